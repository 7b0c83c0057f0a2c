"""Shadow test: run a candidate model beside the active one before swapping.

Two checks, both with each model's own decision rule:

1. every reference crash shipped with the candidate is still detected (a
   run of ``min_run_windows`` windows at or above the threshold within the
   crash's windows);
2. on the gateway's local held-out windows, the candidate raises no more
   false alarms than the active model (negative windows at or above the
   threshold) and detects no fewer of the local crash windows.

Local held-out windows are labelled windows this gateway kept out of
training (``.npz`` with ``windows`` (n, 200, 6) float32 and ``labels`` (n,)
0/1). They are not necessarily consecutive, so they are compared window by
window, not as crash events. Without local windows only check 1 runs, and
the result says so. NumPy and LiteRT only.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from models import contract
from models.evaluation import detect_events
from models.metadata import DecisionRule
from models.runtime import CrashModelRunner

from .reference import ReferenceCrashes

__all__ = ["HeldOutWindows", "ShadowResult", "load_held_out", "run_shadow_test"]

_LOGGER = logging.getLogger(__name__)


@dataclass(frozen=True)
class HeldOutWindows:
    """The gateway's labelled windows kept out of training."""

    windows: npt.NDArray[np.float32]
    labels: npt.NDArray[np.int8]


def load_held_out(path: Path) -> HeldOutWindows | None:
    """Read held-out windows from ``path``; None when it is absent or unusable.

    An unusable file is logged at WARNING (the shadow test then runs on the
    reference crashes alone) rather than blocking every update.
    """
    if not path.exists():
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            windows = np.asarray(data["windows"], dtype=np.float32)
            labels = np.asarray(data["labels"], dtype=np.int8)
    except (OSError, KeyError, ValueError) as exc:
        _LOGGER.warning("%s: held-out windows unusable, not used: %s", path, exc)
        return None
    shape = (contract.WINDOW_SAMPLES, len(contract.INPUT_CHANNELS))
    if (
        windows.ndim != 3
        or windows.shape[1:] != shape
        or labels.shape != (len(windows),)
    ):
        _LOGGER.warning(
            "%s: held-out windows %s with labels %s, expected (n, %d, %d) and (n,)",
            path,
            windows.shape,
            labels.shape,
            *shape,
        )
        return None
    return HeldOutWindows(windows, labels)


@dataclass(frozen=True)
class ShadowResult:
    """Outcome and figures of one shadow test."""

    passed: bool
    reasons: tuple[str, ...]
    figures: dict[str, Any] = field(default_factory=dict)


def _flagged(
    probability: npt.NDArray[np.float32], rule: DecisionRule
) -> npt.NDArray[np.bool_]:
    return np.asarray(probability >= rule.threshold)


def run_shadow_test(
    candidate: CrashModelRunner,
    candidate_rule: DecisionRule,
    active: CrashModelRunner,
    active_rule: DecisionRule,
    reference: ReferenceCrashes,
    held_out: HeldOutWindows | None,
) -> ShadowResult:
    """Run both checks of the module docstring; never raises on a failed check.

    Raises:
        ValueError, RuntimeError: the interpreter fails on the windows.
    """
    reasons: list[str] = []
    figures: dict[str, Any] = {}

    probability = candidate.predict(reference.windows).probability
    missed = [
        reference.kinds[index]
        for index, group in enumerate(reference.groups())
        if not detect_events(
            probability[group], candidate_rule.threshold, candidate_rule.min_run_windows
        )
    ]
    figures["reference_crashes"] = reference.count
    figures["reference_detected"] = reference.count - len(missed)
    if missed:
        reasons.append(
            f"missed {len(missed)} of {reference.count} reference crashes "
            f"({', '.join(missed)})"
        )

    if held_out is None or len(held_out.windows) == 0:
        figures["held_out_windows"] = 0
    else:
        new = _flagged(candidate.predict(held_out.windows).probability, candidate_rule)
        old = _flagged(active.predict(held_out.windows).probability, active_rule)
        negative = held_out.labels == 0
        positive = held_out.labels == 1
        figures.update(
            held_out_windows=len(held_out.windows),
            false_alarms={
                "candidate": int(np.sum(new & negative)),
                "active": int(np.sum(old & negative)),
            },
            crash_windows_detected={
                "candidate": int(np.sum(new & positive)),
                "active": int(np.sum(old & positive)),
                "of": int(np.sum(positive)),
            },
        )
        alarms = figures["false_alarms"]
        detected = figures["crash_windows_detected"]
        if alarms["candidate"] > alarms["active"]:
            reasons.append(
                f"{alarms['candidate']} local false alarms, the active model "
                f"{alarms['active']}"
            )
        if detected["candidate"] < detected["active"]:
            reasons.append(
                f"detects {detected['candidate']} of {detected['of']} local crash "
                f"windows, the active model {detected['active']}"
            )
    return ShadowResult(not reasons, tuple(reasons), figures)
