"""Train the crash detector on synthesised recordings and pick its decision rule.

A run writes into one directory:

- ``model.keras``: the trained network (both outputs);
- ``run.json``: the configuration, seeds, what the training data holds,
  timings, the decision rule chosen on the validation recordings and their
  event figures;
- ``check_windows.npy``: validation windows (every positive and a sample of
  negatives) that ``export`` uses to check TFLite against Keras;
- ``calibration.npz``: training windows that calibrate an int8 export.

Data (``models.corpus``): crash rides, normal rides and off-bike sessions,
each measured with a random mount rotation, range and rate. Training and
validation sets come from disjoint seed ranges (``dataset.split_seeds``).
Class imbalance is handled three ways: crash recordings add positive
windows with the impact at 30 offsets in the window; calm negative windows
(peaks below ``corpus.CALM_PEAK_G`` and ``CALM_PEAK_RADS``) are sampled down
to ``calm_keep``; and the loss weights both classes equally.

Threads: TensorFlow uses ``threads`` intra-op threads and one inter-op
thread (the machine is shared).

TensorFlow is imported inside ``train_run`` only.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from . import contract
from .corpus import (
    CALM_PEAK_G,
    CALM_PEAK_RADS,
    Recording,
    SetPlan,
    iter_recordings,
    plan_recordings,
)
from .dataset import split_seeds
from .events import MATCH_AFTER_S, MATCH_BEFORE_S, ScoredRecording, Tally
from .metadata import DecisionRule
from .network import build_network
from .rebuild import save_calibration

__all__ = [
    "TrainConfig",
    "TrainResult",
    "calibration_windows",
    "choose_rule",
    "scored",
    "train_run",
]

_LOGGER = logging.getLogger(__name__)

# Windows the normalisation layer estimates its statistics from.
_NORMALISATION_WINDOWS = 4000
# Windows kept for the export check: every validation positive up to this
# many, topped up with negatives.
_CHECK_WINDOWS = 512
# Training windows kept to calibrate an int8 export (and an int8 rebuild).
_CALIBRATION_WINDOWS = 256
# Epochs without a better validation loss before training stops early.
_PATIENCE_EPOCHS = 4
# Extra positives: the impact every 50 ms across the middle 1.5 s.
_POSITIVE_STEP_S = 0.05
# Candidate decision rules, kept away from 0 and 1 for margin.
_THRESHOLDS = np.round(np.linspace(0.05, 0.95, 19), 3)
_RUN_CANDIDATES = (1, 2)


@dataclass(frozen=True)
class TrainConfig:
    """What a training run does; the defaults train the shipped model."""

    seed: int = 11
    crash_rides: int = 320
    normal_rides: int = 200
    offbike_sessions: int = 60
    hard_offbike_sessions: int = 0
    hard_riding_sessions: int = 0
    validation_crash_rides: int = 120
    validation_normal_rides: int = 60
    validation_offbike_sessions: int = 30
    calm_keep: float = 0.2
    epochs: int = 14
    batch_size: int = 256
    learning_rate: float = 2e-3
    threads: int = 2
    # Continue from this run's model.keras (same network and normalisation)
    # instead of a fresh network: fine-tuning on more or harder data.
    init_from: str | None = None

    def plans(self) -> tuple[SetPlan, SetPlan]:
        """Return the training and validation set plans."""
        return (
            SetPlan(
                self.crash_rides,
                self.normal_rides,
                self.offbike_sessions,
                hard_offbike_sessions=self.hard_offbike_sessions,
                hard_riding_sessions=self.hard_riding_sessions,
            ),
            SetPlan(
                self.validation_crash_rides,
                self.validation_normal_rides,
                self.validation_offbike_sessions,
                offbike_s=(3600.0, 7200.0),
            ),
        )


@dataclass(frozen=True)
class TrainResult:
    """Where a run's files are and how the model scored on validation."""

    run_dir: Path
    decision: DecisionRule
    validation: dict[str, Any]
    training: dict[str, Any]


def calibration_windows(
    windows: npt.NDArray[np.float32],
    labels: npt.NDArray[np.int8],
    rng: np.random.Generator,
    count: int = _CALIBRATION_WINDOWS,
) -> npt.NDArray[np.float32]:
    """Return the int8 calibration set: training windows, a quarter positive.

    Crash windows hold the largest values the model sees; without enough of
    them the int8 input scale would clip the impacts it must detect.
    """
    positives = np.flatnonzero(labels == 1)
    negatives = np.flatnonzero(labels == 0)
    n_pos = min(len(positives), count // 4)
    n_neg = min(len(negatives), count - n_pos)
    chosen = np.concatenate(
        [
            rng.choice(positives, n_pos, replace=False),
            rng.choice(negatives, n_neg, replace=False),
        ]
    )
    return np.ascontiguousarray(windows[np.sort(chosen)])


def _calm(windows: npt.NDArray[np.float32]) -> npt.NDArray[np.bool_]:
    """Return which windows stay below the calm peaks (per window)."""
    acc = np.sqrt(np.max(np.sum(windows[:, :, :3] ** 2, axis=-1), axis=1))
    gyr = np.sqrt(np.max(np.sum(windows[:, :, 3:] ** 2, axis=-1), axis=1))
    calm: npt.NDArray[np.bool_] = (acc < CALM_PEAK_G) & (gyr < CALM_PEAK_RADS)
    return calm


@dataclass
class _TrainingData:
    windows: list[npt.NDArray[np.float32]]
    labels: list[npt.NDArray[np.int8]]
    facts: dict[str, Any]

    def arrays(self) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int8]]:
        return np.concatenate(self.windows), np.concatenate(self.labels)


def _training_data(
    recordings: list[Recording], calm_keep: float, rng: np.random.Generator
) -> _TrainingData:
    """Select labelled windows: positives (plus offsets), hard and some calm."""
    windows: list[npt.NDArray[np.float32]] = []
    labels: list[npt.NDArray[np.int8]] = []
    facts: dict[str, Any] = {"by_scenario_h": {}, "crashes": {}, "stunts": 0}
    for rec in recordings:
        keep = rec.labels >= 0
        negative = rec.labels == 0
        if len(rec.windows):
            drop = negative & _calm(rec.windows) & (rng.random(len(keep)) >= calm_keep)
            keep &= ~drop
        windows.append(np.ascontiguousarray(rec.windows[keep]))
        labels.append(rec.labels[keep])
        extra = rec.positive_windows(_POSITIVE_STEP_S)
        windows.append(extra)
        labels.append(np.ones(len(extra), dtype=np.int8))
        hours = facts["by_scenario_h"]
        name = rec.spec.scenario
        hours[name] = hours.get(name, 0.0) + (rec.riding_s + rec.offbike_s) / 3600
        if rec.spec.crash is not None:
            facts["crashes"][rec.spec.crash] = (
                facts["crashes"].get(rec.spec.crash, 0) + 1
            )
        facts["stunts"] += rec.stunts
    facts["by_scenario_h"] = {k: round(v, 2) for k, v in facts["by_scenario_h"].items()}
    return _TrainingData(windows, labels, facts)


def scored(rec: Recording, probability: npt.NDArray[np.float32]) -> ScoredRecording:
    """Return the evaluation view of a recording with its window probabilities."""
    return ScoredRecording(
        scenario=rec.spec.scenario,
        crash=rec.spec.crash,
        native_rate_hz=rec.spec.measurement.native_rate_hz,
        probability=probability,
        starts_s=rec.starts_s,
        on_bike=rec.on_bike,
        impact_s=rec.impact_s,
        peak_g=rec.peak_g,
        riding_s=rec.riding_s,
        offbike_s=rec.offbike_s,
    )


def choose_rule(recordings: list[ScoredRecording]) -> tuple[DecisionRule, Tally]:
    """Pick the rule with the best validation figures.

    Order: highest crash recall, then fewest false alarms (riding and
    off-bike), then the shorter run; among ties the middle threshold. When
    every validation crash scores above every window away from a crash, the
    threshold halfway between them (in logits) is taken instead, if it scores
    as well: a few validation hours cannot show a rate of one false alarm per
    1000 h, the margin to the negatives can.
    """
    best_key: tuple[float, int, int] | None = None
    best: list[Tally] = []
    for min_run in _RUN_CANDIDATES:
        for threshold in _THRESHOLDS:
            tally = Tally(DecisionRule(float(threshold), min_run))
            tally.add_all(recordings)
            t = tally.total
            recall = t.detected / t.crashes if t.crashes else 0.0
            alarms = t.false_alarms_riding + t.false_alarms_offbike
            key = (round(recall, 6), -alarms, -min_run)
            if best_key is None or key > best_key:
                best_key, best = key, [tally]
            elif key == best_key:
                best.append(tally)
    chosen = best[len(best) // 2]
    margin = _margin_threshold(recordings)
    if margin is not None and chosen.rule.min_run_windows == 1:
        tally = Tally(DecisionRule(margin, 1))
        tally.add_all(recordings)
        if tally.total.detected == chosen.total.detected and (
            tally.total.false_alarms_riding + tally.total.false_alarms_offbike
            <= chosen.total.false_alarms_riding + chosen.total.false_alarms_offbike
        ):
            return tally.rule, tally
    return chosen.rule, chosen


def _margin_threshold(recordings: list[ScoredRecording]) -> float | None:
    """Return the threshold halfway (in logits) between crashes and the rest.

    The lowest peak probability of any validation crash and the highest
    probability of any window away from a crash; ``None`` when they overlap.
    Halfway in logit space keeps equal margins on both sides, where a
    threshold picked only for recall would sit close to the negatives.
    """
    crash_peaks = []
    negative_max = 0.0
    for rec in recordings:
        p = rec.probability
        if rec.impact_s is None:
            negative_max = max(negative_max, float(p.max(initial=0.0)))
            continue
        near = (rec.starts_s >= rec.impact_s - MATCH_BEFORE_S) & (
            rec.starts_s <= rec.impact_s + MATCH_AFTER_S
        )
        before = rec.starts_s < rec.impact_s - MATCH_BEFORE_S
        crash_peaks.append(float(p[near].max(initial=0.0)))
        negative_max = max(negative_max, float(p[before].max(initial=0.0)))
    if not crash_peaks:
        return None
    low, high = min(crash_peaks), negative_max
    if not high < low:
        return None
    eps = 1e-7

    def logit(x: float) -> float:
        x = min(max(x, eps), 1 - eps)
        return float(np.log(x / (1 - x)))

    middle = (logit(low) + logit(high)) / 2
    return round(float(1 / (1 + np.exp(-middle))), 4)


def _check_windows(
    windows: npt.NDArray[np.float32],
    labels: npt.NDArray[np.int8],
    rng: np.random.Generator,
) -> npt.NDArray[np.float32]:
    positives = np.flatnonzero(labels == 1)[: _CHECK_WINDOWS // 2]
    negatives = np.flatnonzero(labels == 0)
    take = min(len(negatives), _CHECK_WINDOWS - len(positives))
    chosen = np.concatenate([positives, rng.choice(negatives, take, replace=False)])
    return np.ascontiguousarray(windows[np.sort(chosen)])


def _seed_range(seeds: list[int]) -> dict[str, int]:
    return {"first": seeds[0], "last": seeds[-1], "count": len(seeds)}


def _limit_threads(tf: Any, threads: int) -> None:
    """Give TensorFlow ``threads`` intra-op threads, if it has not started yet.

    TensorFlow fixes its thread pools when its context first runs an op; in a
    process that already used it (a test session, a notebook) the pools stay
    as they are, which changes speed, not results.
    """
    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:
        _LOGGER.warning(
            "training: TensorFlow is already running; keeping its thread pools "
            "(asked for %d intra-op threads)",
            threads,
        )


def train_run(config: TrainConfig, run_dir: Path) -> TrainResult:
    """Synthesise recordings, train, choose the decision rule, write the run.

    Raises:
        DatasetError: recordings cannot be synthesised or hold no positives.
    """
    import keras
    import tensorflow as tf

    _limit_threads(tf, config.threads)
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(config.seed)
    rng = np.random.default_rng(config.seed)

    # Data: disjoint seed ranges for training and validation.
    started = time.perf_counter()
    train_plan, validation_plan = config.plans()
    train_seeds, validation_seeds = split_seeds(
        config.seed, train_plan.count, validation_plan.count
    )
    train_specs = plan_recordings(train_seeds[0], train_plan)
    validation_specs = plan_recordings(validation_seeds[0], validation_plan)
    data = _training_data(list(iter_recordings(train_specs)), config.calm_keep, rng)
    x_train, y_train = data.arrays()
    validation = list(iter_recordings(validation_specs))
    x_val = np.concatenate([r.windows[r.labels >= 0] for r in validation])
    y_val = np.concatenate([r.labels[r.labels >= 0] for r in validation])
    data_s = time.perf_counter() - started
    _LOGGER.info(
        "run %s: %d training windows (%d positive) from %d recordings, %d "
        "validation windows (%d positive) from %d, built in %.0f s",
        run_dir.name,
        len(y_train),
        int(y_train.sum()),
        len(train_specs),
        len(y_val),
        int(y_val.sum()),
        len(validation_specs),
        data_s,
    )

    # Model: normalisation from training windows, a single-output view to fit.
    sample = rng.choice(len(x_train), min(len(x_train), _NORMALISATION_WINDOWS))
    if config.init_from is None:
        model = build_network(x_train[sample])
    else:
        model = keras.saving.load_model(Path(config.init_from) / "model.keras")
    fit_view = keras.Model(
        model.inputs, model.get_layer(contract.OUTPUT_PROBABILITY).output
    )
    fit_view.compile(
        optimizer=keras.optimizers.Adam(config.learning_rate),
        loss="binary_crossentropy",
        metrics=[keras.metrics.AUC(name="auc")],
    )
    n_pos = int(y_train.sum())
    n_neg = len(y_train) - n_pos
    class_weight = {0: len(y_train) / (2.0 * n_neg), 1: len(y_train) / (2.0 * n_pos)}

    started = time.perf_counter()
    history = fit_view.fit(
        x_train,
        y_train.astype(np.float32),
        validation_data=(x_val, y_val.astype(np.float32)),
        epochs=config.epochs,
        batch_size=config.batch_size,
        class_weight=class_weight,
        shuffle=True,
        verbose=0,
        callbacks=[
            keras.callbacks.EarlyStopping(
                monitor="val_loss", patience=_PATIENCE_EPOCHS, restore_best_weights=True
            ),
            _epoch_logger(run_dir.name),
        ],
    )
    fit_s = time.perf_counter() - started

    # Decision rule and event figures on the validation recordings.
    scores = [
        scored(
            rec,
            np.asarray(
                model.predict(rec.windows, batch_size=512, verbose=0)[
                    contract.OUTPUT_PROBABILITY
                ]
            )[:, 0]
            if len(rec.windows)
            else np.empty(0, np.float32),
        )
        for rec in validation
    ]
    decision, tally = choose_rule(scores)
    validation_figures = {
        "seeds": _seed_range(validation_seeds),
        "plan": asdict(validation_plan),
        "event": tally.to_dict(),
    }
    training = {
        "config": asdict(config),
        "seeds": _seed_range(train_seeds),
        "plan": asdict(train_plan),
        "data": data.facts,
        "train_windows": len(y_train),
        "train_positive_windows": n_pos,
        "epochs_run": len(history.history["loss"]),
        "data_s": round(data_s, 1),
        "fit_s": round(fit_s, 1),
        "parameters": int(model.count_params()),
    }

    model.save(run_dir / "model.keras")
    np.save(run_dir / "check_windows.npy", _check_windows(x_val, y_val, rng))
    save_calibration(
        run_dir / "calibration.npz", calibration_windows(x_train, y_train, rng)
    )
    run = {
        "decision": asdict(decision),
        "validation": validation_figures,
        "training": training,
    }
    (run_dir / "run.json").write_text(json.dumps(run, indent=2) + "\n")
    total = tally.total.to_dict()
    _LOGGER.info(
        "run %s: threshold %.3f (run of %d); validation crashes %d/%d, false "
        "alarms %d in %.1f h riding, %d in %.1f h off the bike",
        run_dir.name,
        decision.threshold,
        decision.min_run_windows,
        total["detected"],
        total["crashes"],
        total["false_alarms_riding"],
        total["riding_h"],
        total["false_alarms_offbike"],
        total["offbike_h"],
    )
    return TrainResult(run_dir, decision, validation_figures, training)


def _epoch_logger(run_name: str) -> Any:
    """Return a Keras callback logging one line per epoch (Keras' bar is off)."""
    import keras

    class EpochLogger(keras.callbacks.Callback):  # type: ignore[misc]
        def on_epoch_end(
            self, epoch: int, logs: dict[str, float] | None = None
        ) -> None:
            logs = logs or {}
            _LOGGER.info(
                "run %s: epoch %d loss %.4f auc %.4f val_loss %.4f val_auc %.4f",
                run_name,
                epoch + 1,
                logs.get("loss", float("nan")),
                logs.get("auc", float("nan")),
                logs.get("val_loss", float("nan")),
                logs.get("val_auc", float("nan")),
            )

    return EpochLogger()
