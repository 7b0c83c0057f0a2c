"""Assess an exported model on held-out synthesised rides, through LiteRT.

This is what ``crash-model evaluate`` runs: the ``.tflite`` file as the
gateway runs it (``runtime.CrashModelRunner``), the decision rule from its
metadata, and rides from seeds the model was not trained or validated on.
No TensorFlow is imported.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .dataset import plan_rides, ride_windows
from .evaluation import (
    EventFigures,
    RideScores,
    WindowFigures,
    event_figures,
    window_figures,
)
from .registry import ModelInfo
from .runtime import CrashModelRunner

__all__ = ["Assessment", "assess_model"]

_LOGGER = logging.getLogger(__name__)


@dataclass(frozen=True)
class Assessment:
    """Figures of one model on a set of rides."""

    rides: int
    seeds: tuple[int, int]
    window: WindowFigures
    event: EventFigures
    # crash kind -> (detected, crashes)
    by_crash_kind: dict[str, tuple[int, int]]
    seconds_per_batch: float


def assess_model(info: ModelInfo, seeds: Sequence[int]) -> Assessment:
    """Run ``info``'s model over one synthesised ride per seed and score it."""
    runner = CrashModelRunner.from_info(info)
    rule = info.metadata.decision
    scores: list[RideScores] = []
    labels: list[np.ndarray] = []
    by_kind: dict[str, tuple[int, int]] = {}
    invoke_s = 0.0
    batches = 0
    for spec in plan_rides(seeds):
        ride = ride_windows(spec)
        started = time.perf_counter()
        outputs = runner.predict(ride.windows)
        invoke_s += time.perf_counter() - started
        batches += -(-len(ride.windows) // runner.batch_windows)
        score = RideScores(
            outputs.probability, ride.starts_s, ride.impact_s, ride.riding_s
        )
        scores.append(score)
        labels.append(ride.labels)
        if ride.crash is not None:
            hit = event_figures([score], rule).detected
            detected, total = by_kind.get(ride.crash, (0, 0))
            by_kind[ride.crash] = (detected + hit, total + 1)
        _LOGGER.debug(
            "ride seed %d (%s, %s, %.0f Hz): max probability %.3f",
            spec.seed,
            ride.scenario,
            ride.crash or "no crash",
            ride.native_rate_hz,
            float(outputs.probability.max(initial=0.0)),
        )
    probability = np.concatenate([s.probability for s in scores])
    return Assessment(
        rides=len(scores),
        seeds=(int(seeds[0]), int(seeds[-1])),
        window=window_figures(np.concatenate(labels), probability, rule.threshold),
        event=event_figures(scores, rule),
        by_crash_kind=dict(sorted(by_kind.items())),
        seconds_per_batch=invoke_s / max(batches, 1),
    )
