"""Score crash-model outputs at window level and at crash-event level.

Window level: precision and recall at a threshold, and ROC AUC, over windows
labelled positive (1) or negative (0); ambiguous windows (-1) are left out.

Event level, which is what a rider feels: an *alarm run* is a run of at least
``min_run_windows`` consecutive windows at or above the threshold (see
``metadata.DecisionRule``), and alarm runs whose windows start within
``MERGE_GAP_S`` of each other are one *event* (``alarm_spans``, the rule the
gateway applies and ``models.events`` evaluates with). A true crash counts as
detected when an event has a window starting between one window length before
the impact and ``MATCH_AFTER_IMPACT_S`` after it; every other event is a false
alarm. False alarms are counted over the whole log (walking included) and
divided by the hours on the bike before any crash, so the rate errs high.

NumPy only: the gateway and tests import this without TensorFlow.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from . import contract
from .metadata import DecisionRule

__all__ = [
    "MATCH_AFTER_IMPACT_S",
    "MERGE_GAP_S",
    "EventFigures",
    "RideScores",
    "WindowFigures",
    "alarm_spans",
    "detect_events",
    "event_figures",
    "roc_auc",
    "window_figures",
]

# A rider slides and tumbles for several seconds after the impact; an alarm in
# that time is the same crash, not a false alarm.
MATCH_AFTER_IMPACT_S = 10.0
# Alarm runs whose windows start at most this far apart (s) are one event:
# a tumbling crash can dip below the threshold for a window or two.
MERGE_GAP_S = 5.0


@dataclass(frozen=True)
class RideScores:
    """One ride's window probabilities and what truly happened in it."""

    probability: npt.NDArray[np.float32]
    starts_s: npt.NDArray[np.float64]
    impact_s: float | None
    riding_s: float


@dataclass(frozen=True)
class WindowFigures:
    """Window-level figures at one threshold."""

    threshold: float
    positives: int
    negatives: int
    precision: float
    recall: float
    auc: float

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return asdict(self)


@dataclass(frozen=True)
class EventFigures:
    """Crash-event figures at one decision rule."""

    threshold: float
    min_run_windows: int
    crashes: int
    detected: int
    recall: float
    false_alarms: int
    riding_h: float
    false_alarms_per_h: float

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return asdict(self)


def roc_auc(labels: npt.ArrayLike, scores: npt.ArrayLike) -> float:
    """Return the ROC AUC (Mann-Whitney U with tied ranks averaged).

    ``nan`` when only one class is present.
    """
    y = np.asarray(labels).astype(bool)
    s = np.asarray(scores, dtype=np.float64)
    n_pos = int(y.sum())
    n_neg = len(y) - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(s, kind="mergesort")
    sorted_s = s[order]
    ranks = np.empty(len(s), dtype=np.float64)
    # Average ranks over ties so equal scores count half.
    _, first, counts = np.unique(sorted_s, return_index=True, return_counts=True)
    average = first + (counts + 1) / 2.0
    ranks[order] = np.repeat(average, counts)
    u = ranks[y].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))


def window_figures(
    labels: npt.ArrayLike, probability: npt.ArrayLike, threshold: float
) -> WindowFigures:
    """Return precision, recall and AUC over labelled (0/1) windows."""
    y = np.asarray(labels)
    p = np.asarray(probability, dtype=np.float64)
    keep = y >= 0
    y, p = y[keep].astype(bool), p[keep]
    predicted = p >= threshold
    true_pos = int(np.sum(predicted & y))
    precision = true_pos / int(predicted.sum()) if predicted.any() else float("nan")
    recall = true_pos / int(y.sum()) if y.any() else float("nan")
    return WindowFigures(
        threshold=float(threshold),
        positives=int(y.sum()),
        negatives=int((~y).sum()),
        precision=float(precision),
        recall=float(recall),
        auc=roc_auc(y, p),
    )


def detect_events(
    probability: npt.ArrayLike, threshold: float, min_run_windows: int
) -> list[tuple[int, int]]:
    """Return crash events as (first, last) window indices, inclusive.

    An event is a maximal run of consecutive windows at or above ``threshold``
    that is at least ``min_run_windows`` long.
    """
    above = np.asarray(probability) >= threshold
    if not above.any():
        return []
    edges = np.diff(np.concatenate([[0], above.astype(np.int8), [0]]))
    firsts = np.flatnonzero(edges == 1)
    lasts = np.flatnonzero(edges == -1) - 1
    return [
        (int(a), int(b))
        for a, b in zip(firsts, lasts, strict=True)
        if b - a + 1 >= min_run_windows
    ]


def alarm_spans(
    probability: npt.ArrayLike, starts_s: npt.ArrayLike, rule: DecisionRule
) -> list[tuple[int, int]]:
    """Return events as (first, last) window indices: alarm runs, merged.

    Runs from ``detect_events`` whose windows start at most ``MERGE_GAP_S``
    apart (last window of one to first of the next) become one event.
    """
    starts = np.asarray(starts_s, dtype=np.float64)
    merged: list[tuple[int, int]] = []
    for first, last in detect_events(probability, rule.threshold, rule.min_run_windows):
        if merged and starts[first] - starts[merged[-1][1]] <= MERGE_GAP_S:
            merged[-1] = (merged[-1][0], last)
        else:
            merged.append((first, last))
    return merged


def event_figures(rides: Sequence[RideScores], rule: DecisionRule) -> EventFigures:
    """Return crash recall and false alarms per riding hour under ``rule``."""
    crashes = detected = false_alarms = 0
    riding_s = 0.0
    for ride in rides:
        riding_s += ride.riding_s
        events = alarm_spans(ride.probability, ride.starts_s, rule)
        matched = False
        for first, last in events:
            starts = ride.starts_s[first : last + 1]
            hits = ride.impact_s is not None and bool(
                np.any(
                    (starts >= ride.impact_s - contract.WINDOW_S)
                    & (starts <= ride.impact_s + MATCH_AFTER_IMPACT_S)
                )
            )
            if hits:
                matched = True
            else:
                false_alarms += 1
        if ride.impact_s is not None:
            crashes += 1
            detected += int(matched)
    riding_h = riding_s / 3600.0
    return EventFigures(
        threshold=rule.threshold,
        min_run_windows=rule.min_run_windows,
        crashes=crashes,
        detected=detected,
        recall=detected / crashes if crashes else float("nan"),
        false_alarms=false_alarms,
        riding_h=riding_h,
        false_alarms_per_h=false_alarms / riding_h if riding_h > 0 else float("nan"),
    )
