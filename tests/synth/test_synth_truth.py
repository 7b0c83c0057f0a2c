"""The truth file agrees with the signals it describes."""

from __future__ import annotations

import itertools
import math
from dataclasses import replace

import numpy as np
import pytest
from synth_helpers import count_hard_braking, count_turns, runs

from firmware_bridge.logformat import EventKind
from firmware_bridge.synth import G_M_S2, Activity, RideSpec, SynthRide, synthesise
from firmware_bridge.synth.ride import plan_ride

RATE_HZ = 500.0
BASE = RideSpec(
    seed=21,
    scenario="mixed",
    riding_s=240.0,
    sample_rate_hz=RATE_HZ,
    walk_before_s=20.0,
    walk_after_s=20.0,
)


@pytest.fixture(scope="module")
def crashes() -> dict[str, SynthRide]:
    return {
        kind: synthesise(replace(BASE, crash=kind))
        for kind in ("lowside", "highside", "collision")
    }


@pytest.fixture(scope="module")
def rides() -> list[SynthRide]:
    return [
        synthesise(replace(BASE, seed=31, scenario="track")),
        synthesise(replace(BASE, seed=32, scenario="city")),
        synthesise(replace(BASE, seed=33, scenario="mixed", riding_s=600.0)),
    ]


def _sample(ride: SynthRide, t_s: float) -> int:
    return round(t_s * ride.spec.sample_rate_hz)


@pytest.mark.parametrize("kind", ["lowside", "highside", "collision"])
def test_impact_time_is_the_acceleration_peak(
    crashes: dict[str, SynthRide], kind: str
) -> None:
    ride = crashes[kind]
    (event,) = ride.truth.crash_events
    assert ride.truth.crash_detected and event.kind == kind
    onset = _sample(ride, event.onset_offset_s)
    rest = _sample(ride, event.rest_offset_s)
    magnitude = np.linalg.norm(ride.accel_g[onset : rest + 1], axis=1)
    peak = onset + int(np.argmax(magnitude))
    impact = _sample(ride, event.t_offset_s)
    assert abs(peak - impact) <= 0.02 * RATE_HZ
    assert np.linalg.norm(ride.accel_g[impact]) >= 0.9 * magnitude.max()
    assert event.peak_g >= 4.0
    assert event.onset_offset_s < event.t_offset_s < event.rest_offset_s


@pytest.mark.parametrize("kind", ["lowside", "highside", "collision"])
def test_airbag_event_follows_onset_by_30_to_80_ms(
    crashes: dict[str, SynthRide], kind: str
) -> None:
    ride = crashes[kind]
    (event,) = ride.truth.crash_events
    (record,) = ride.events
    assert record["kind"] == EventKind.AIRBAG_DEPLOYED and record["value"] == 1
    delay_s = event.airbag_offset_s - event.onset_offset_s
    assert 0.03 <= delay_s <= 0.08
    since_start_us = (int(record["t_us"]) - ride.header.counter_start_us) % (1 << 32)
    assert abs(since_start_us / 1e6 - event.airbag_offset_s) < 1e-6


@pytest.mark.parametrize("kind", ["lowside", "highside", "collision"])
def test_crash_then_lying_then_getting_up_then_walking(
    crashes: dict[str, SynthRide], kind: str
) -> None:
    ride = crashes[kind]
    (event,) = ride.truth.crash_events
    after = ride.activity[_sample(ride, event.onset_offset_s) :]
    order = [int(a) for i, a in enumerate(after) if i == 0 or a != after[i - 1]]
    assert order[:3] == [Activity.CRASH, Activity.LYING, Activity.GETTING_UP]
    assert set(order[3:]) <= {Activity.STANDING, Activity.WALKING}
    assert not ride.sample_truth.on_bike[_sample(ride, event.onset_offset_s) :].any()

    # Lying still: gravity only, body z horizontal, no rotation.
    lying = ride.activity == Activity.LYING
    acc = ride.accel_g[lying]
    assert np.all(np.abs(np.linalg.norm(acc, axis=1) - 1.0) < 0.06)
    assert np.all(np.abs(acc[:, 2]) < 0.1)
    assert np.abs(ride.gyro_dps[lying]).max() < 3.0


def test_crash_saturates_a_small_accelerometer_range() -> None:
    spec = replace(
        BASE, seed=8, scenario="track", crash="highside", accel_full_scale_g=8
    )
    ride = synthesise(spec)
    (event,) = ride.truth.crash_events
    assert event.peak_g > 8.0
    assert ride.truth.saturated_samples > 0
    assert np.abs(ride.accel_g).max() >= 8.0 * 32767 / 32768


def test_distance_is_the_integral_of_ground_speed(rides: list[SynthRide]) -> None:
    for ride in rides:
        st = ride.sample_truth
        speed = st.speed_m_s.astype(np.float64)
        integral_m = float(np.sum((speed[1:] + speed[:-1]) / 2) / RATE_HZ)
        assert ride.truth.distance_km == pytest.approx(integral_m / 1000, rel=1e-5)
        assert ride.truth.avg_speed_kmh == pytest.approx(
            ride.truth.distance_km / ride.truth.duration_s * 3600, rel=1e-4
        )
        # GNSS speed integrated over its fixes gives the same distance.
        fixes = ride.gnss[ride.gnss["fix"] > 0]
        gnss_m = float(np.sum(fixes["speed_mm_s"]) / 1000 / ride.spec.gnss_rate_hz)
        assert gnss_m == pytest.approx(integral_m, rel=0.03)
        # The ENU track is as long as the distance.
        steps = np.hypot(np.diff(st.east_m), np.diff(st.north_m))
        assert float(np.sum(steps)) == pytest.approx(integral_m, rel=1e-3)


def test_max_speed_accel_and_lean_are_sample_extremes(rides: list[SynthRide]) -> None:
    for ride in rides:
        st, t = ride.sample_truth, ride.truth
        bike = st.on_bike
        assert t.max_speed_kmh == pytest.approx(st.speed_m_s.max() * 3.6, abs=1e-3)
        assert t.max_accel_g == pytest.approx(st.long_accel_g[bike].max(), abs=1e-4)
        assert t.max_decel_g == pytest.approx(-st.long_accel_g[bike].min(), abs=1e-4)
        riding = bike & (st.speed_m_s >= 10 / 3.6)
        assert t.max_lean_right_deg == pytest.approx(
            st.lean_deg[riding].max(), abs=1e-3
        )
        assert t.max_lean_left_deg == pytest.approx(
            -st.lean_deg[riding].min(), abs=1e-3
        )
    track = rides[0].truth
    assert track.max_lean_left_deg is not None and track.max_lean_right_deg is not None
    assert 44.0 < max(track.max_lean_left_deg, track.max_lean_right_deg) < 56.0
    assert track.max_decel_g is not None and 0.95 < track.max_decel_g < 1.25


def test_lean_is_the_coordinated_turn_lean(rides: list[SynthRide]) -> None:
    for ride in rides:
        st = ride.sample_truth
        moving = st.on_bike & (st.speed_m_s > 3.0)
        v = st.speed_m_s[moving].astype(np.float64)
        r = np.radians(st.yaw_rate_dps[moving].astype(np.float64))
        coordinated = -np.degrees(np.arctan(v * r / G_M_S2))
        # Posture sway of the rider is a fraction of a degree on top.
        assert np.abs(st.lean_deg[moving] - coordinated).max() < 1.0
        # Positive lean is to the right: right turns (negative yaw rate).
        turning = np.abs(r) > 0.1
        assert np.all(np.sign(st.lean_deg[moving][turning]) == -np.sign(r[turning]))


def test_specific_force_of_a_coordinated_turn_lies_along_body_z() -> None:
    plan = plan_ride(replace(BASE, seed=31, scenario="track"))
    part = plan.parts[0]
    t = np.arange(part.t_start_s, part.t_end_s, 0.05)
    s = part.evaluate(t)
    steady = (
        s.on_bike
        & (np.abs(np.degrees(s.roll_rad)) > 30)
        & (np.abs(s.long_accel_m_s2) < 1e-9)
    )
    assert steady.sum() > 100
    f = s.f_body_g[steady]
    expected = 1.0 / np.cos(s.roll_rad[steady])
    np.testing.assert_allclose(np.linalg.norm(f, axis=1), expected, rtol=0.02)
    # Torso pitch tilts it in x; sideways it stays within a few hundredths of g.
    assert np.abs(f[:, 1]).max() < 0.08


def test_gyro_is_the_derivative_of_the_attitude() -> None:
    plan = plan_ride(replace(BASE, seed=31, scenario="track"))
    part = plan.parts[0]
    t = np.arange(part.t_start_s + 1, part.t_end_s - 1, 0.0731)
    h = 1e-5
    s, ahead, behind = part.evaluate(t), part.evaluate(t + h), part.evaluate(t - h)
    d_r = (ahead.body_to_world - behind.body_to_world) / (2 * h)
    w = np.einsum("nji,njk->nik", s.body_to_world, d_r)
    omega = np.stack([w[:, 2, 1], w[:, 0, 2], w[:, 1, 0]], axis=-1)
    np.testing.assert_allclose(omega, s.omega_rad_s, atol=1e-6)
    assert np.abs(s.omega_rad_s).max() > 0.5


def test_turn_counts_match_the_yaw_rate(rides: list[SynthRide]) -> None:
    for ride in rides:
        st = ride.sample_truth
        left, right, changes = count_turns(st.yaw_rate_dps, st.on_bike, RATE_HZ)
        assert (left, right) == (ride.truth.turns_left, ride.truth.turns_right)
        # Unambiguous: every manoeuvre is clearly a turn or clearly not.
        assert all(abs(c) >= 59.0 or abs(c) <= 26.0 for c in changes)
        # Turns are ridden at 12 km/h or more; walking turns are slower.
        turning = st.on_bike & (np.abs(st.yaw_rate_dps) > 1e-6)
        assert st.speed_m_s[turning].min() >= 12 / 3.6 - 0.01
        walking = ride.activity == Activity.WALKING
        assert st.speed_m_s[walking].max() < 7 / 3.6
    assert sum(r.truth.turns_left + r.truth.turns_right for r in rides) >= 10


def test_manoeuvres_are_separated_by_straight_riding(rides: list[SynthRide]) -> None:
    lane_changes = 0
    for ride in rides:
        st = ride.sample_truth
        r = np.where(st.on_bike, st.yaw_rate_dps, 0.0)
        spans = runs(np.abs(r) > 1e-6)
        change = [float(np.sum(r[a:b])) / RATE_HZ for a, b in spans]
        for k, ((_, end), (start, _)) in enumerate(itertools.pairwise(spans)):
            gap_s = (start - end) / RATE_HZ
            small = max(abs(change[k]), abs(change[k + 1])) <= 10.5
            if small and change[k] * change[k + 1] < 0 and gap_s < 3.99:
                lane_changes += 1
                assert gap_s >= 0.99
            else:
                assert gap_s >= 3.99
    assert lane_changes >= 1


def test_hard_braking_is_counted_and_unambiguous(rides: list[SynthRide]) -> None:
    total = 0
    for ride in rides:
        st = ride.sample_truth
        count = count_hard_braking(st.long_accel_g, st.on_bike, RATE_HZ)
        assert count == ride.truth.hard_braking_events
        total += count
        # Any braking beyond 0.3 g stays above 0.4 g for at least 0.8 s.
        decel = np.where(st.on_bike, -st.long_accel_g, 0.0)
        for start, stop in runs(decel > 0.3):
            above = np.count_nonzero(decel[start:stop] > 0.4) / RATE_HZ
            assert above >= 0.79
    assert total >= 3


def test_gnss_follows_the_true_track(rides: list[SynthRide]) -> None:
    ride = rides[2]
    fixes = ride.gnss[ride.gnss["fix"] > 0]
    index = np.rint(
        ((fixes["t_us"].astype(np.int64) - ride.header.counter_start_us) % (1 << 32))
        / 1e6
        * RATE_HZ
    ).astype(int)
    assert np.all(ride.t_us[index] == fixes["t_us"])
    st = ride.sample_truth
    speed_error = fixes["speed_mm_s"] / 1000 - st.speed_m_s[index]
    assert np.abs(speed_error).max() < 0.8
    assert 0.08 < np.std(speed_error) < 0.25
    lat0 = math.radians(float(fixes["lat_e7"][0]) / 1e7)
    north = np.radians((fixes["lat_e7"] - fixes["lat_e7"][0]) / 1e7) * 6_371_000
    east = np.radians((fixes["lon_e7"] - fixes["lon_e7"][0]) / 1e7) * 6_371_000
    east *= math.cos(lat0)
    error = np.hypot(
        east - (st.east_m[index] - st.east_m[index[0]]),
        north - (st.north_m[index] - st.north_m[index[0]]),
    )
    assert np.percentile(error, 95) < 15.0
    span_s = len(ride.gnss) / ride.spec.gnss_rate_hz
    assert span_s == pytest.approx(ride.truth.duration_s, abs=1.0)


def test_magnetometer_sees_the_earth_field(rides: list[SynthRide]) -> None:
    mag = rides[1].mag_ut
    assert mag is not None
    norm = np.linalg.norm(mag, axis=1)
    assert 35.0 < float(np.median(norm)) < 65.0
    # The field turns with the suit: its body-frame direction varies.
    assert np.ptp(mag[:, 0]) > 30.0


def test_walking_bounces_at_the_step_rate() -> None:
    ride = synthesise(
        RideSpec(seed=4, scenario="city", riding_s=0, walk_before_s=60, walk_after_s=0)
    )
    assert ride.truth.max_lean_left_deg is None and ride.truth.turns_left == 0
    assert set(np.unique(ride.activity)) <= {Activity.STANDING, Activity.WALKING}
    walking = runs(ride.activity == Activity.WALKING)
    start, stop = max(walking, key=lambda run: run[1] - run[0])
    z = ride.accel_g[start:stop, 2].astype(np.float64)
    spectrum = np.abs(np.fft.rfft(z - z.mean()))
    freqs = np.fft.rfftfreq(len(z), 1 / ride.spec.sample_rate_hz)
    assert 1.6 <= freqs[int(np.argmax(spectrum))] <= 2.0


def test_engine_idles_at_tens_of_hertz() -> None:
    ride = synthesise(replace(BASE, seed=40, scenario="city", sample_rate_hz=1000.0))
    stopped = [
        (a, b) for a, b in runs(ride.activity == Activity.STOPPED) if b - a > 3000
    ]
    start, stop = stopped[-1]
    z = ride.accel_g[start + 500 : stop - 500, 2].astype(np.float64)
    spectrum = np.abs(np.fft.rfft(z - z.mean()))
    freqs = np.fft.rfftfreq(len(z), 1e-3)
    assert 15.0 <= freqs[int(np.argmax(spectrum))] <= 50.0


def test_forced_counter_wrap_is_counted() -> None:
    spec = replace(BASE, riding_s=60.0, counter_start_us=(1 << 32) - 5_000_000)
    ride = synthesise(spec)
    assert ride.truth.counter_wraps == 1
    steps = np.diff(ride.t_us.astype(np.int64))
    assert np.count_nonzero(steps < 0) == 1
    assert int(np.argmax(steps < 0)) + 1 == round(5.0 * RATE_HZ)


def test_clock_unset_gives_null_times() -> None:
    ride = synthesise(replace(BASE, riding_s=30.0, start_utc=None))
    assert ride.header.start_utc is None
    assert ride.truth.start_utc is None and ride.truth.end_utc is None
    timed = synthesise(replace(BASE, riding_s=30.0))
    assert timed.truth.start_utc == "2025-06-14T07:30:00.000000Z"
    assert timed.truth.duration_s == pytest.approx((timed.truth.samples - 1) / RATE_HZ)
