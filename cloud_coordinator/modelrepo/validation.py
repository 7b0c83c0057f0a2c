"""The coordinator's validation rides, a model's score on them, and the gate.

Validation data is a set of rides (windows, window start times, the true
impact time or none, time on the bike), kept as one ``.npz``::

    windows   (n, 200, 6) float32   every ride's windows, concatenated
    ride      (n,) int32            ride index of each window (ascending)
    starts_s  (n,) float64          window start, seconds from the ride start
    impact_s  (r,) float64          impact time per ride, NaN: no crash
    riding_s  (r,) float64          seconds on the bike per ride
    kind      (r,) str              crash kind per ride ("" without crash)

Without a file the rides are synthesised from seeds disjoint from training
(``models.dataset``) and cached in it. Recorded rides (crashes confirmed by
R&D) go into the same format.

A model is scored with its own decision rule, on LiteRT as a gateway runs
it (``models.evaluation``: crash recall at event level and false alarms).
The gate passes a candidate that detects at least as many crashes as the
current model and raises no more false alarms; anything else needs R&D's
approval. No TensorFlow is imported.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from edge_agent.modelmgr.reference import ReferenceCrashes
from models import contract
from models.dataset import plan_rides, ride_windows, split_seeds
from models.evaluation import (
    EventFigures,
    RideScores,
    detect_events,
    event_figures,
    roc_auc,
)
from models.metadata import DecisionRule
from models.runtime import CrashModelRunner

from .errors import ModelRepoError

__all__ = [
    "GateDecision",
    "ModelScore",
    "ValidationSet",
    "gate",
    "load_or_synthesise",
    "pick_reference_crashes",
    "score_model",
]

_LOGGER = logging.getLogger(__name__)

# Seed of the synthesised validation rides: far from the seeds the shipped
# model was trained and validated on (15, i.e. 3e7..), so none is shared.
DEFAULT_VALIDATION_SEED = 4242
DEFAULT_VALIDATION_RIDES = 24
# Windows from one window before the impact to this long after it make a
# reference crash: the impact at every position the decision rule can see.
REFERENCE_AFTER_IMPACT_S = 1.0
DEFAULT_REFERENCE_CRASHES = 8


@dataclass(frozen=True)
class ValidationSet:
    """Validation rides as flat arrays (see the module docstring)."""

    windows: npt.NDArray[np.float32]
    ride: npt.NDArray[np.int32]
    starts_s: npt.NDArray[np.float64]
    impact_s: npt.NDArray[np.float64]
    riding_s: npt.NDArray[np.float64]
    kinds: tuple[str, ...]

    @property
    def rides(self) -> int:
        """Return the number of rides."""
        return len(self.impact_s)

    def ride_slices(self) -> list[slice]:
        """Return the window slice of each ride."""
        bounds = np.searchsorted(self.ride, np.arange(self.rides + 1))
        return [slice(int(a), int(b)) for a, b in itertools.pairwise(bounds)]

    def save(self, path: Path) -> None:
        """Write the set to ``path`` (``.npz``)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(path.name + ".partial")
        with open(partial, "wb") as stream:
            np.savez_compressed(
                stream,
                windows=self.windows,
                ride=self.ride,
                starts_s=self.starts_s,
                impact_s=self.impact_s,
                riding_s=self.riding_s,
                kind=np.array(self.kinds, dtype=str),
            )
        partial.replace(path)

    @classmethod
    def load(cls, path: Path) -> ValidationSet:
        """Read a set written by :meth:`save`.

        Raises:
            ModelRepoError: the file is unreadable or its arrays disagree.
        """
        try:
            with np.load(path, allow_pickle=False) as data:
                arrays = {name: data[name] for name in data.files}
            result = cls(
                windows=np.asarray(arrays["windows"], np.float32),
                ride=np.asarray(arrays["ride"], np.int32),
                starts_s=np.asarray(arrays["starts_s"], np.float64),
                impact_s=np.asarray(arrays["impact_s"], np.float64),
                riding_s=np.asarray(arrays["riding_s"], np.float64),
                kinds=tuple(str(k) for k in np.atleast_1d(arrays["kind"])),
            )
        except (OSError, KeyError, ValueError) as exc:
            raise ModelRepoError(f"{path}: not a validation set: {exc}") from exc
        n = len(result.windows)
        if (
            result.ride.shape != (n,)
            or result.starts_s.shape != (n,)
            or result.riding_s.shape != result.impact_s.shape
            or len(result.kinds) != result.rides
            or np.any(np.diff(result.ride) < 0)
        ):
            raise ModelRepoError(
                f"{path}: validation arrays disagree in length or order"
            )
        return result

    @classmethod
    def synthesise(cls, seeds: Sequence[int]) -> ValidationSet:
        """Synthesise one ride per seed (``models.dataset``)."""
        windows, rides, starts, impacts, riding, kinds = [], [], [], [], [], []
        for index, spec in enumerate(plan_rides(seeds)):
            ride = ride_windows(spec)
            windows.append(np.asarray(ride.windows, np.float32))
            rides.append(np.full(len(ride.windows), index, np.int32))
            starts.append(ride.starts_s)
            impacts.append(np.nan if ride.impact_s is None else ride.impact_s)
            riding.append(ride.riding_s)
            kinds.append(ride.crash or "")
        shape = (0, contract.WINDOW_SAMPLES, len(contract.INPUT_CHANNELS))
        return cls(
            windows=np.concatenate([*windows, np.empty(shape, np.float32)]),
            ride=np.concatenate([*rides, np.empty(0, np.int32)]),
            starts_s=np.concatenate([*starts, np.empty(0)]),
            impact_s=np.asarray(impacts, np.float64),
            riding_s=np.asarray(riding, np.float64),
            kinds=tuple(kinds),
        )


def load_or_synthesise(
    path: Path | None,
    *,
    seed: int = DEFAULT_VALIDATION_SEED,
    rides: int = DEFAULT_VALIDATION_RIDES,
) -> ValidationSet:
    """Load the validation file, or synthesise the rides and cache them there."""
    if path is not None and path.exists():
        return ValidationSet.load(path)
    _, seeds = split_seeds(seed, 1, rides)
    result = ValidationSet.synthesise(seeds)
    _LOGGER.info(
        "validation: synthesised %d rides (%d windows, seed %d)",
        result.rides,
        len(result.windows),
        seed,
    )
    if path is not None:
        result.save(path)
    return result


@dataclass(frozen=True)
class ModelScore:
    """One model's figures on the validation set."""

    version: str
    event: EventFigures
    window_auc: float
    probability: npt.NDArray[np.float32]

    def to_dict(self) -> dict[str, Any]:
        """Return JSON-ready figures (without the per-window probabilities)."""
        return {
            "version": self.version,
            "event": self.event.to_dict(),
            "window_auc": self.window_auc,
        }


def score_model(
    model_path: Path, version: str, rule: DecisionRule, validation: ValidationSet
) -> ModelScore:
    """Run a ``.tflite`` over every validation window and score it under ``rule``.

    Raises:
        ModelError: the interpreter cannot load or run the model.
    """
    runner = CrashModelRunner(model_path)
    probability = runner.predict(validation.windows).probability
    rides = [
        RideScores(
            probability[part],
            validation.starts_s[part],
            None if np.isnan(validation.impact_s[i]) else float(validation.impact_s[i]),
            float(validation.riding_s[i]),
        )
        for i, part in enumerate(validation.ride_slices())
    ]
    labels = _window_labels(validation)
    keep = labels >= 0
    return ModelScore(
        version=version,
        event=event_figures(rides, rule),
        window_auc=roc_auc(labels[keep], probability[keep]),
        probability=probability,
    )


def _window_labels(validation: ValidationSet) -> npt.NDArray[np.int8]:
    from models.dataset import label_windows

    labels = np.zeros(len(validation.windows), np.int8)
    for i, part in enumerate(validation.ride_slices()):
        impact = validation.impact_s[i]
        labels[part] = label_windows(
            validation.starts_s[part], None if np.isnan(impact) else float(impact)
        )
    return labels


@dataclass(frozen=True)
class GateDecision:
    """Whether a candidate may be published, and why."""

    passed: bool
    reasons: tuple[str, ...]
    candidate: dict[str, Any]
    current: dict[str, Any] | None

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return {
            "passed": self.passed,
            "reasons": list(self.reasons),
            "candidate": self.candidate,
            "current": self.current,
        }


def gate(candidate: ModelScore, current: ModelScore | None) -> GateDecision:
    """Pass ``candidate`` if it is not worse than ``current`` on crashes and alarms."""
    if current is None:
        return GateDecision(True, ("no current model",), candidate.to_dict(), None)
    reasons = []
    new, old = candidate.event, current.event
    if new.detected < old.detected:
        reasons.append(
            f"detects {new.detected}/{new.crashes} validation crashes, the current "
            f"model {old.detected}/{old.crashes}"
        )
    if new.false_alarms > old.false_alarms:
        reasons.append(
            f"raises {new.false_alarms} false alarms in {new.riding_h:.2f} h, the "
            f"current model {old.false_alarms}"
        )
    if not reasons:
        reasons.append(
            f"crashes {new.detected}/{new.crashes} (current {old.detected}), false "
            f"alarms {new.false_alarms} (current {old.false_alarms})"
        )
        return GateDecision(
            True, tuple(reasons), candidate.to_dict(), current.to_dict()
        )
    return GateDecision(False, tuple(reasons), candidate.to_dict(), current.to_dict())


def pick_reference_crashes(
    validation: ValidationSet,
    score: ModelScore,
    rule: DecisionRule,
    *,
    limit: int = DEFAULT_REFERENCE_CRASHES,
) -> ReferenceCrashes:
    """Return up to ``limit`` validation crashes the scored model detects.

    Each crash is its windows from one window length before the impact to
    ``REFERENCE_AFTER_IMPACT_S`` after it; one crash per kind first, then
    more in ride order.

    Raises:
        ModelRepoError: the model detects none of the validation crashes.
    """
    chosen: list[tuple[int, npt.NDArray[np.intp]]] = []
    for i, part in enumerate(validation.ride_slices()):
        impact = validation.impact_s[i]
        if np.isnan(impact):
            continue
        starts = validation.starts_s[part]
        local = np.flatnonzero(
            (starts >= impact - contract.WINDOW_S)
            & (starts <= impact + REFERENCE_AFTER_IMPACT_S)
        )
        if len(local) == 0:
            continue
        probability = score.probability[part][local]
        if detect_events(probability, rule.threshold, rule.min_run_windows):
            chosen.append((i, local + part.start))
    if not chosen:
        raise ModelRepoError(
            f"model {score.version} detects no validation crash: no reference "
            "crashes to ship"
        )
    first: list[tuple[int, npt.NDArray[np.intp]]] = []
    rest: list[tuple[int, npt.NDArray[np.intp]]] = []
    seen: set[str] = set()
    for item in chosen:
        kind = validation.kinds[item[0]]
        (rest if kind in seen else first).append(item)
        seen.add(kind)
    picked = (first + rest)[:limit]
    windows = np.concatenate([validation.windows[index] for _, index in picked])
    crash = np.concatenate(
        [np.full(len(index), n, np.int32) for n, (_, index) in enumerate(picked)]
    )
    kinds = tuple(validation.kinds[ride] for ride, _ in picked)
    return ReferenceCrashes(np.ascontiguousarray(windows), crash, kinds)
