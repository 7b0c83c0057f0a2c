"""Window and event scoring of crash-model outputs."""

from __future__ import annotations

import numpy as np
import pytest

from models.dataset import label_windows
from models.evaluation import (
    RideScores,
    alarm_spans,
    detect_events,
    event_figures,
    roc_auc,
    window_figures,
)
from models.metadata import DecisionRule


def test_roc_auc_matches_pairwise_count() -> None:
    rng = np.random.default_rng(3)
    labels = rng.random(300) < 0.2
    scores = np.round(rng.random(300) + labels * 0.4, 1)  # rounded: many ties
    pos, neg = scores[labels], scores[~labels]
    pairwise = (pos[:, None] > neg[None, :]).mean() + 0.5 * (
        pos[:, None] == neg[None, :]
    ).mean()
    assert roc_auc(labels, scores) == pytest.approx(pairwise, abs=1e-12)


def test_roc_auc_single_class_is_nan() -> None:
    assert np.isnan(roc_auc(np.zeros(5), np.arange(5)))


def test_window_figures_skip_ignored_windows() -> None:
    labels = np.array([1, 1, 0, 0, -1, -1])
    probability = np.array([0.9, 0.2, 0.8, 0.1, 0.99, 0.0])
    figures = window_figures(labels, probability, 0.5)
    assert (figures.positives, figures.negatives) == (2, 2)
    assert figures.precision == pytest.approx(0.5)
    assert figures.recall == pytest.approx(0.5)
    assert figures.auc == pytest.approx(0.75)


def test_detect_events_needs_run_length() -> None:
    probability = np.array([0.9, 0.1, 0.8, 0.8, 0.1, 0.7, 0.7, 0.7])
    assert detect_events(probability, 0.5, 1) == [(0, 0), (2, 3), (5, 7)]
    assert detect_events(probability, 0.5, 2) == [(2, 3), (5, 7)]
    assert detect_events(probability, 0.5, 3) == [(5, 7)]
    assert detect_events(np.zeros(4), 0.5, 1) == []


def _ride(probability: list[float], impact_s: float | None) -> RideScores:
    p = np.asarray(probability, dtype=np.float32)
    starts_s = np.arange(len(p), dtype=np.float64) * 0.5
    return RideScores(p, starts_s, impact_s, riding_s=1800.0)


def test_event_figures_match_crash_and_count_false_alarms() -> None:
    crash = _ride([0, 0, 0, 0.9, 0.9, 0, 0, 0, 0, 0, 0, 0, 0.8, 0.8], impact_s=2.5)
    normal = _ride([0, 0.7, 0.7, 0, 0], impact_s=None)
    missed = _ride([0.1] * 10, impact_s=3.0)
    figures = event_figures([crash, normal, missed], DecisionRule(0.5, 2))
    assert (figures.crashes, figures.detected) == (2, 1)
    # The crash ride's late run starts 3.5 s after the impact: same crash.
    assert figures.false_alarms == 1
    assert figures.riding_h == pytest.approx(1.5)
    assert figures.false_alarms_per_h == pytest.approx(1 / 1.5)


def test_alarm_runs_within_the_merge_gap_are_one_event() -> None:
    # Runs whose windows start 5 s apart merge; 5.5 s apart they do not.
    p = np.zeros(40, dtype=np.float32)
    p[[2, 12, 24, 25]] = 0.9  # windows at 1 s, 6 s, 12 s and 12.5 s
    starts_s = np.arange(40) * 0.5
    rule = DecisionRule(0.5, 1)
    assert alarm_spans(p, starts_s, rule) == [(2, 12), (24, 25)]
    two_stunts = RideScores(p, starts_s, None, riding_s=3600.0)
    assert event_figures([two_stunts], rule).false_alarms == 2


def test_label_windows_middle_edges_and_aftermath() -> None:
    starts = np.arange(0, 30, 0.5)
    labels = label_windows(starts, impact_s=10.0)
    by_start = dict(zip(starts.tolist(), labels.tolist(), strict=True))
    assert by_start[8.0] == 0  # ends as the impact happens
    assert by_start[8.5] == 1
    assert by_start[9.0] == 1
    assert by_start[9.5] == 1
    assert by_start[10.0] == -1  # impact on the first sample: an edge
    assert by_start[17.5] == -1  # aftermath
    assert by_start[18.0] == 0
    assert by_start[5.0] == 0
    assert label_windows(starts, None).tolist() == [0] * len(starts)
