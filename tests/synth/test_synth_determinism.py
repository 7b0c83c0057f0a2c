"""Reproducibility: same spec, same bytes; memory and log agree; chunking."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from firmware_bridge.logformat import raw_to_physical, read_log
from firmware_bridge.synth import (
    CHUNK_S,
    RideSpec,
    iter_ride_chunks,
    synthesise,
    truth_path,
    write_ride,
)

SPEC = RideSpec(
    seed=5,
    scenario="city",
    riding_s=90.0,
    sample_rate_hz=200.0,
    crash="lowside",
    walk_before_s=15.0,
    walk_after_s=10.0,
)


def test_same_seed_gives_byte_identical_log_and_truth(tmp_path: Path) -> None:
    a, b = tmp_path / "a.slog", tmp_path / "b.slog"
    write_ride(SPEC, a)
    write_ride(SPEC, b)
    assert a.read_bytes() == b.read_bytes()
    assert json.loads(truth_path(a).read_text()) == json.loads(
        truth_path(b).read_text()
    )
    assert not list(tmp_path.glob("*.partial"))


def test_other_seed_gives_another_ride(tmp_path: Path) -> None:
    from dataclasses import replace

    a, b = tmp_path / "a.slog", tmp_path / "b.slog"
    write_ride(SPEC, a)
    write_ride(replace(SPEC, seed=6), b)
    assert a.read_bytes() != b.read_bytes()


def test_in_memory_ride_equals_the_decoded_log(tmp_path: Path) -> None:
    path = tmp_path / "ride.slog"
    truth = write_ride(SPEC, path)
    ride = synthesise(SPEC)
    log = read_log(path)

    assert ride.header == log.header
    assert truth == ride.truth
    np.testing.assert_array_equal(ride.t_us, log.imu["t_us"])
    np.testing.assert_array_equal(ride.accel_g, raw_to_physical(log.imu["acc"], 16))
    np.testing.assert_array_equal(ride.gyro_dps, raw_to_physical(log.imu["gyr"], 2000))
    assert ride.mag_ut is not None
    np.testing.assert_array_equal(ride.mag_ut, raw_to_physical(log.imu["mag"], 1300))
    np.testing.assert_array_equal(ride.events, log.events)
    np.testing.assert_array_equal(ride.gnss, log.gnss)
    assert len(ride.t_s) == len(ride.activity) == len(ride.sample_truth.lean_deg)


def test_chunks_are_contiguous_and_bounded() -> None:
    expected_first = 0
    for number, chunk in enumerate(iter_ride_chunks(SPEC)):
        assert chunk.index == number
        assert chunk.first_sample == expected_first
        assert 0 < len(chunk) <= CHUNK_S * SPEC.sample_rate_hz
        assert chunk.accel_g.dtype == np.float32 and chunk.accel_g.shape == (
            len(chunk),
            3,
        )
        np.testing.assert_allclose(
            chunk.t_s,
            np.arange(chunk.first_sample, chunk.first_sample + len(chunk)) / 200,
        )
        expected_first += len(chunk)
    assert expected_first == synthesise(SPEC).truth.samples


def test_the_ride_does_not_depend_on_the_sample_rate() -> None:
    from dataclasses import replace

    slow = synthesise(replace(SPEC, sample_rate_hz=100.0, crash=None)).truth
    fast = synthesise(replace(SPEC, sample_rate_hz=1000.0, crash=None)).truth
    assert (slow.turns_left, slow.turns_right) == (fast.turns_left, fast.turns_right)
    assert slow.hard_braking_events == fast.hard_braking_events
    assert abs(slow.duration_s - fast.duration_s) < 0.02
    assert abs(slow.distance_km - fast.distance_km) < 1e-3 * fast.distance_km
    assert abs(slow.max_speed_kmh - fast.max_speed_kmh) < 0.01
