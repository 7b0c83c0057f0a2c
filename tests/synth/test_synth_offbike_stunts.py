"""Off-bike sessions, riding stunt overlays and the standstill crash."""

from __future__ import annotations

import numpy as np
import pytest

from firmware_bridge.synth import ALL_CRASH_KINDS, CRASH_KINDS, RideSpec, synthesise
from firmware_bridge.synth.offbike import OFFBIKE_SCENES, offbike_stream
from firmware_bridge.synth.stunts import STUNT_KINDS, overlay_stunts


def test_offbike_session_is_seeded_and_holds_sharp_scenes() -> None:
    one = offbike_stream(5, 3 * 3600.0, 200.0)
    again = offbike_stream(5, 3 * 3600.0, 200.0)
    np.testing.assert_array_equal(one.accel_g, again.accel_g)
    assert one.duration_s == pytest.approx(3 * 3600.0)
    kinds = {s.kind for s in one.scenes}
    assert kinds <= set(OFFBIKE_SCENES) and len(kinds) >= 8
    magnitude = np.linalg.norm(one.accel_g, axis=1)
    # Sharp moments (drops, jumps, sitting down hard) well above walking.
    assert magnitude.max() > 5.0
    assert np.median(magnitude) == pytest.approx(1.0, abs=0.1)
    with pytest.raises(ValueError, match="unknown off-bike scenes"):
        offbike_stream(5, 10.0, 100.0, scenes=("skydive",))


def test_stunts_change_the_streams_only_while_riding() -> None:
    ride = synthesise(
        RideSpec(
            seed=77,
            scenario="track",
            riding_s=200.0,
            sample_rate_hz=200.0,
            with_mag=False,
            with_gnss=False,
        )
    )
    accel, gyro = ride.accel_g.copy(), ride.gyro_dps.copy()
    truth = ride.sample_truth
    t_s = ride.t_s - ride.t_s[0]
    stunts = overlay_stunts(
        t_s,
        accel,
        gyro,
        truth.speed_m_s,
        truth.lean_deg,
        truth.on_bike,
        np.random.default_rng(1),
        per_hour=400.0,
    )
    assert len(stunts) >= 5 and {s.kind for s in stunts} <= set(STUNT_KINDS)
    changed = np.any(accel != ride.accel_g, axis=1)
    assert changed.any()
    assert not changed[~truth.on_bike & (t_s < t_s[np.argmax(truth.on_bike)])].any()


def test_standstill_crash_happens_when_stopped() -> None:
    assert "standstill" in ALL_CRASH_KINDS and "standstill" not in CRASH_KINDS
    ride = synthesise(
        RideSpec(
            seed=8,
            scenario="city",
            riding_s=180.0,
            sample_rate_hz=200.0,
            crash="standstill",
            with_mag=False,
            with_gnss=False,
        )
    )
    (impact_s,) = ride.truth.crash_impact_s
    k = int(impact_s * 200.0)
    assert ride.sample_truth.speed_m_s[k - 300] < 0.5
    assert 2.5 < np.linalg.norm(ride.accel_g[k - 5 : k + 5], axis=1).max() < 9.0
