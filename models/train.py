"""Train the crash detector on synthesised rides and pick its decision rule.

A run writes into one directory:

- ``model.keras``: the trained network (both outputs);
- ``run.json``: seeds and ride counts, epochs, timings, the decision rule
  chosen on the validation rides and the validation figures;
- ``check_windows.npy``: a few hundred validation windows (every positive
  and a sample of negatives) that ``export`` uses to check TFLite against
  Keras.

Training and validation rides come from disjoint seed ranges (see
``dataset.split_seeds``). Class imbalance (a crash gives a handful of positive
windows in minutes of riding) is handled twice: training crash rides add
extra positive windows at sub-hop offsets around the impact, and the loss
weights both classes equally.

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
from .dataset import RideWindows, WindowSet, build_window_set, plan_rides, split_seeds
from .evaluation import (
    RideScores,
    choose_decision_rule,
    event_figures,
    window_figures,
)
from .metadata import DecisionRule
from .network import build_network
from .rebuild import save_calibration

__all__ = [
    "TrainConfig",
    "TrainResult",
    "calibration_windows",
    "predict_rides",
    "train_run",
]

_LOGGER = logging.getLogger(__name__)

# Windows the normalisation layer estimates its statistics from: plenty for
# six means and variances, and cheap.
_NORMALISATION_WINDOWS = 4000
# Windows kept for the export check: every validation positive up to this many,
# topped up with negatives.
_CHECK_WINDOWS = 256
# Training windows kept to calibrate an int8 export (and an int8 rebuild with
# new head weights): a few hundred cover the value ranges; more only slows
# the converter.
_CALIBRATION_WINDOWS = 512
# Epochs without a better validation AUC before training stops early.
_PATIENCE_EPOCHS = 4


@dataclass(frozen=True)
class TrainConfig:
    """What a training run does; the defaults train the shipped model."""

    seed: int = 7
    train_rides: int = 160
    validation_rides: int = 48
    epochs: int = 14
    batch_size: int = 128
    learning_rate: float = 2e-3


@dataclass(frozen=True)
class TrainResult:
    """Where a run's files are and how the model scored on validation."""

    run_dir: Path
    decision: DecisionRule
    validation: dict[str, Any]
    training: dict[str, Any]


def predict_rides(model: Any, rides: list[RideWindows]) -> list[RideScores]:
    """Run a Keras model over each ride's windows."""
    scores = []
    for ride in rides:
        if len(ride.windows):
            out = model.predict(ride.windows, batch_size=256, verbose=0)
            probability = np.asarray(out[contract.OUTPUT_PROBABILITY])[:, 0]
        else:
            probability = np.empty(0, dtype=np.float32)
        scores.append(
            RideScores(probability, ride.starts_s, ride.impact_s, ride.riding_s)
        )
    return scores


def _seed_range(seeds: list[int]) -> dict[str, int]:
    """Return consecutive seeds as first, last and count (for run.json)."""
    return {"first": seeds[0], "last": seeds[-1], "count": len(seeds)}


def _check_windows(
    validation: WindowSet, rng: np.random.Generator
) -> npt.NDArray[np.float32]:
    positives = np.flatnonzero(validation.labels == 1)[:_CHECK_WINDOWS]
    negatives = np.flatnonzero(validation.labels == 0)
    take = min(len(negatives), _CHECK_WINDOWS - len(positives))
    chosen = np.concatenate([positives, rng.choice(negatives, take, replace=False)])
    return np.ascontiguousarray(validation.windows[np.sort(chosen)])


def calibration_windows(
    windows: npt.NDArray[np.float32],
    labels: npt.NDArray[np.int8],
    rng: np.random.Generator,
) -> npt.NDArray[np.float32]:
    """Return the int8 calibration set: training windows, a quarter positive.

    Crash windows hold the largest values the model sees; without enough of
    them the int8 input scale would clip the impacts it must detect.
    """
    positives = np.flatnonzero(labels == 1)
    negatives = np.flatnonzero(labels == 0)
    n_pos = min(len(positives), _CALIBRATION_WINDOWS // 4)
    n_neg = min(len(negatives), _CALIBRATION_WINDOWS - n_pos)
    chosen = np.concatenate(
        [
            rng.choice(positives, n_pos, replace=False),
            rng.choice(negatives, n_neg, replace=False),
        ]
    )
    return np.ascontiguousarray(windows[np.sort(chosen)])


def train_run(config: TrainConfig, run_dir: Path) -> TrainResult:
    """Synthesise rides, train, choose the decision rule, write the run files.

    Raises:
        DatasetError: the rides cannot be synthesised or hold no positives.
    """
    import keras

    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(config.seed)
    rng = np.random.default_rng(config.seed)

    # Data: disjoint seeds, training rides augmented around the impact.
    started = time.perf_counter()
    train_seeds, validation_seeds = split_seeds(
        config.seed, config.train_rides, config.validation_rides
    )
    train_set = build_window_set(plan_rides(train_seeds), augment=True)
    validation_set = build_window_set(plan_rides(validation_seeds), augment=False)
    data_s = time.perf_counter() - started
    _LOGGER.info(
        "run %s: %d training windows (%d positive) from %d rides, %d validation "
        "windows (%d positive) from %d rides, built in %.0f s",
        run_dir.name,
        train_set.labelled_count,
        train_set.positive_count,
        len(train_seeds),
        validation_set.labelled_count,
        validation_set.positive_count,
        len(validation_seeds),
        data_s,
    )
    x_train, y_train = train_set.labelled()
    x_val, y_val = validation_set.labelled()

    # Model: normalisation from training windows, a single-output view to fit.
    sample = rng.choice(len(x_train), min(len(x_train), _NORMALISATION_WINDOWS))
    model = build_network(x_train[sample])
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
                monitor="val_auc",
                mode="max",
                patience=_PATIENCE_EPOCHS,
                restore_best_weights=True,
            ),
            _epoch_logger(run_dir.name),
        ],
    )
    fit_s = time.perf_counter() - started

    # Decision rule and figures on the validation rides.
    scores = predict_rides(model, validation_set.rides)
    probability = np.concatenate([s.probability for s in scores])
    decision = choose_decision_rule(scores)
    windows = window_figures(validation_set.labels, probability, decision.threshold)
    events = event_figures(scores, decision)
    validation = {
        "rides": len(validation_seeds),
        "seeds": _seed_range(validation_seeds),
        "window": windows.to_dict(),
        "event": events.to_dict(),
    }
    training = {
        "config": asdict(config),
        "train_rides": len(train_seeds),
        "train_seeds": _seed_range(train_seeds),
        "train_windows": train_set.labelled_count,
        "train_positive_windows": train_set.positive_count,
        "crash_rides": sum(r.impact_s is not None for r in train_set.rides),
        "epochs_run": len(history.history["loss"]),
        "data_s": round(data_s, 1),
        "fit_s": round(fit_s, 1),
        "parameters": int(model.count_params()),
    }

    model.save(run_dir / "model.keras")
    np.save(run_dir / "check_windows.npy", _check_windows(validation_set, rng))
    save_calibration(
        run_dir / "calibration.npz", calibration_windows(x_train, y_train, rng)
    )
    run = {
        "decision": asdict(decision),
        "validation": validation,
        "training": training,
    }
    (run_dir / "run.json").write_text(json.dumps(run, indent=2) + "\n")
    _LOGGER.info(
        "run %s: threshold %.3f (run of %d), window precision %.3f recall %.3f "
        "AUC %.4f, crash recall %d/%d, %.2f false alarms/h over %.2f h",
        run_dir.name,
        decision.threshold,
        decision.min_run_windows,
        windows.precision,
        windows.recall,
        windows.auc,
        events.detected,
        events.crashes,
        events.false_alarms_per_h,
        events.riding_h,
    )
    return TrainResult(run_dir, decision, validation, training)


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
