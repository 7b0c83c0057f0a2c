"""The shipped model tells synthesised crashes from riding on held-out seeds."""

from __future__ import annotations

import numpy as np
import pytest

from firmware_bridge.synth import RideSpec
from models.dataset import ride_windows, split_seeds
from models.evaluation import RideScores, detect_events, event_figures
from models.registry import ModelInfo
from models.runtime import CrashModelRunner

# A seed no training run of the shipped model used (checked below).
HELD_OUT_SEED = 4242
_, HELD_OUT = split_seeds(HELD_OUT_SEED, 1, 8)

CRASHES = [
    ("lowside", "city", 1000.0),
    ("highside", "track", 400.0),
    ("collision", "highway", 200.0),
]
NORMAL = [("mixed", 500.0), ("city", 100.0)]


def _spec(seed: int, scenario: str, rate_hz: float, crash: str | None) -> RideSpec:
    return RideSpec(
        seed=seed,
        scenario=scenario,
        riding_s=150.0 if crash is None else 70.0,
        sample_rate_hz=rate_hz,
        crash=crash,
        walk_before_s=15.0,
        walk_after_s=15.0,
        with_mag=False,
        with_gnss=False,
    )


def test_held_out_seeds_were_not_trained_on(shipped_info: ModelInfo) -> None:
    training = shipped_info.metadata.training
    validation = shipped_info.metadata.validation
    for used in (training["seeds"], validation["seeds"]):
        for seed in HELD_OUT:
            assert not used["first"] <= seed <= used["last"]


@pytest.mark.parametrize(("index", "crash"), list(enumerate(CRASHES)))
def test_crash_is_detected(
    shipped_info: ModelInfo,
    shipped_runner: CrashModelRunner,
    index: int,
    crash: tuple[str, str, float],
) -> None:
    kind, scenario, rate_hz = crash
    ride = ride_windows(_spec(HELD_OUT[index], scenario, rate_hz, kind))
    assert ride.impact_s is not None
    probability = shipped_runner.predict(ride.windows).probability
    rule = shipped_info.metadata.decision

    holding_impact = ride.labels == 1
    assert holding_impact.sum() >= 2
    assert probability[holding_impact].max() >= rule.threshold

    scores = RideScores(probability, ride.starts_s, ride.impact_s, ride.riding_s)
    figures = event_figures([scores], rule)
    assert (figures.crashes, figures.detected, figures.false_alarms) == (1, 1, 0)


@pytest.mark.parametrize(("index", "normal"), list(enumerate(NORMAL)))
def test_normal_riding_stays_below_threshold(
    shipped_info: ModelInfo,
    shipped_runner: CrashModelRunner,
    index: int,
    normal: tuple[str, float],
) -> None:
    scenario, rate_hz = normal
    seed = HELD_OUT[len(CRASHES) + index]
    ride = ride_windows(_spec(seed, scenario, rate_hz, None))
    assert len(ride.windows) > 300
    probability = shipped_runner.predict(ride.windows).probability
    rule = shipped_info.metadata.decision

    above = probability >= rule.threshold
    assert above.mean() < 0.01, f"{above.sum()} of {len(above)} windows above"
    assert detect_events(probability, rule.threshold, rule.min_run_windows) == []
    # Mostly far below, not just under the line.
    assert np.median(probability) < 0.1
