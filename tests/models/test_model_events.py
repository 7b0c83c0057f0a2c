"""Event grouping, matching and figures (models.events), and the corpus."""

from __future__ import annotations

import numpy as np
import pytest

from models import contract
from models.corpus import (
    HARD_OFFBIKE_SCENES,
    HARD_RIDING_STUNTS_PER_H,
    SetPlan,
    plan_recordings,
    recording,
)
from models.events import (
    MERGE_GAP_S,
    ScoredRecording,
    Tally,
    group_events,
    score_recording,
)
from models.metadata import DecisionRule

RULE = DecisionRule(0.5, 1)


def _rec(
    probability: list[float],
    impact_s: float | None = None,
    on_bike: bool = True,
    peak_at_s: float | None = None,
) -> ScoredRecording:
    n = len(probability)
    starts = contract.window_starts_s(n)
    cells = int((starts[-1] + contract.WINDOW_S) * contract.MODEL_RATE_HZ)
    peak = np.ones(cells, dtype=np.float32)
    if peak_at_s is not None:
        peak[int(peak_at_s * contract.MODEL_RATE_HZ)] = 9.0
    return ScoredRecording(
        "city",
        None if impact_s is None else "lowside",
        100.0,
        np.asarray(probability, np.float32),
        starts,
        np.full(n, on_bike),
        impact_s,
        peak,
        3600.0 if on_bike else 0.0,
        0.0 if on_bike else 3600.0,
    )


def test_alarm_runs_close_together_are_one_event() -> None:
    gap_windows = int(MERGE_GAP_S / contract.WINDOW_HOP_S)
    p = [0.0] * 10 + [0.9] + [0.0] * (gap_windows - 1) + [0.9] + [0.0] * 40 + [0.9]
    events = group_events(
        np.asarray(p), contract.window_starts_s(len(p)), np.ones(2000, np.float32), RULE
    )
    assert [(e.first, e.last) for e in events] == [
        (10, 10 + gap_windows),
        (len(p) - 1,) * 2,
    ]


def test_event_time_is_the_acceleration_peak() -> None:
    rec = _rec([0.0] * 20 + [0.8, 0.9, 0.7] + [0.0] * 20, impact_s=11.0, peak_at_s=11.3)
    outcome = score_recording(rec, RULE)
    assert outcome.detected
    assert outcome.time_error_s == pytest.approx(0.305)


def test_false_alarms_are_attributed_and_post_crash_alarms_ignored() -> None:
    p = [0.0] * 10 + [0.9] + [0.0] * 30 + [0.9] + [0.0] * 10
    riding = score_recording(_rec(p), RULE)
    assert (riding.false_alarms_riding, riding.false_alarms_offbike) == (2, 0)
    walking = score_recording(_rec(p, on_bike=False), RULE)
    assert (walking.false_alarms_riding, walking.false_alarms_offbike) == (0, 2)
    # The second alarm is 15 s after the crash at 5 s: ignored, not a new alarm.
    crashed = score_recording(_rec(p, impact_s=5.5), RULE)
    assert crashed.detected
    assert crashed.false_alarms_riding + crashed.false_alarms_offbike == 0
    missed = score_recording(_rec([0.0] * 30, impact_s=5.5), RULE)
    assert not missed.detected and missed.time_error_s is None


def test_tally_rates_per_1000_hours() -> None:
    tally = Tally(RULE)
    tally.add(_rec([0.0] * 10 + [0.9] + [0.0] * 10))
    tally.add(_rec([0.0] * 21, on_bike=False))
    total = tally.to_dict()["total"]
    assert total["false_alarms_per_1000h_riding"] == pytest.approx(1000.0)
    assert total["false_alarms_per_1000h_offbike"] == pytest.approx(0.0)
    assert total["recall"] is None


def test_recordings_follow_their_seed_and_cover_every_kind() -> None:
    plan = SetPlan(
        3,
        1,
        1,
        crash_riding_s=(30.0, 40.0),
        normal_riding_s=(30.0, 40.0),
        offbike_s=(60.0, 90.0),
    )
    specs = plan_recordings(123_000, plan)
    assert [s.seed for s in specs] == list(range(123_000, 123_005))
    assert plan_recordings(123_000, plan) == specs
    assert [s.crash is not None for s in specs] == [True, True, True, False, False]
    assert specs[-1].scenario == "offbike"
    crash = recording(specs[0])
    again = recording(specs[0])
    np.testing.assert_array_equal(crash.windows, again.windows)
    assert crash.impact_s is not None and (crash.labels == 1).sum() >= 2
    limit = specs[0].measurement.accel_range_g
    assert np.abs(crash.model_input[:, :3]).max() <= limit + 1e-6
    assert len(crash.positive_windows(0.05)) >= 25
    offbike = recording(specs[-1])
    assert offbike.riding_s == 0 and offbike.offbike_s > 50
    assert not offbike.on_bike.any() and (offbike.labels == 0).all()


def test_hard_sessions_come_last_and_leave_the_rest_unchanged() -> None:
    base = SetPlan(2, 2, 2)
    hard = SetPlan(2, 2, 2, hard_offbike_sessions=2, hard_riding_sessions=3)
    plain, extended = plan_recordings(7_000, base), plan_recordings(7_000, hard)
    assert extended[: len(plain)] == plain
    offbike, riding = extended[6:8], extended[8:]
    assert all(s.offbike_scenes == HARD_OFFBIKE_SCENES for s in offbike)
    assert [s.crash for s in riding] == [None, None, None]
    assert all(s.ride is not None for s in riding)
    assert {s.stunts_per_h for s in riding} == {HARD_RIDING_STUNTS_PER_H}
    dense = recording(riding[0])
    assert dense.impact_s is None and (dense.labels == 0).all()
    expected = HARD_RIDING_STUNTS_PER_H * dense.riding_s / 3600
    assert dense.stunts > expected / 3
