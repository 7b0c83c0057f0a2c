"""Every scenario, rate, sensor set and crash makes a valid log."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from firmware_bridge.logformat import BlockType, Channel, LogReader, read_log
from firmware_bridge.synth import (
    Activity,
    RideSpec,
    SynthSpecError,
    reference_spec,
    truth_path,
    write_ride,
)
from firmware_bridge.synth.ride import plan_ride


def _check_log(path: Path, spec: RideSpec) -> None:
    import json

    truth = json.loads(truth_path(path).read_text())
    log = read_log(path)
    h = log.header
    assert h.sample_rate_hz == spec.sample_rate_hz
    assert h.accel_full_scale_g == spec.accel_full_scale_g
    assert h.gyro_full_scale_dps == spec.gyro_full_scale_dps
    assert h.suit_serial == spec.suit_serial
    assert h.log_id == truth["log_id"]
    assert (Channel.MAG in h.channels) == spec.with_mag
    assert len(log.imu) == truth["samples"]
    assert truth["duration_s"] == pytest.approx((len(log.imu) - 1) / h.sample_rate_hz)
    assert (len(log.gnss) > 0) == spec.with_gnss
    assert truth["gnss_records"] == len(log.gnss)
    assert truth["crash"]["detected"] == (spec.crash is not None)
    assert len(log.events) == (1 if spec.crash else 0)
    assert set(truth["definitions"]) >= {"turn", "lean", "distance_km"}
    with open(path, "rb") as stream:
        blocks = list(LogReader(stream, str(path)).blocks())
    imu_sizes = [len(b.records) for b in blocks if b.kind == BlockType.IMU]
    assert all(size == 1024 for size in imu_sizes[:-1])


@pytest.mark.parametrize(
    ("scenario", "rate_hz"),
    [("city", 100.0), ("highway", 250.0), ("track", 1000.0), ("mixed", 400.0)],
)
def test_each_scenario_and_rate_writes_a_valid_log(
    tmp_path: Path, scenario: str, rate_hz: float
) -> None:
    spec = RideSpec(seed=3, scenario=scenario, riding_s=150.0, sample_rate_hz=rate_hz)
    path = tmp_path / f"{scenario}.slog"
    truth = write_ride(spec, path)
    _check_log(path, spec)
    assert truth.max_speed_kmh > 25.0
    assert truth.turns_left + truth.turns_right >= 1


@pytest.mark.parametrize(
    ("crash", "accel_fs", "gyro_fs"),
    [("lowside", 4, 500), ("highside", 16, 2000), ("collision", 32, 1000)],
)
def test_each_crash_and_full_scale_writes_a_valid_log(
    tmp_path: Path, crash: str, accel_fs: int, gyro_fs: int
) -> None:
    spec = RideSpec(
        seed=9,
        scenario="track",
        riding_s=120.0,
        sample_rate_hz=200.0,
        crash=crash,
        crash_at_s=80.0,
        accel_full_scale_g=accel_fs,
        gyro_full_scale_dps=gyro_fs,
        walk_after_s=0.0,
        lying_s=10.0,
    )
    path = tmp_path / f"{crash}.slog"
    truth = write_ride(spec, path)
    _check_log(path, spec)
    (event,) = truth.crash_events
    assert event.onset_offset_s == pytest.approx(
        plan_ride(spec).ride_start_s + 80.0,
        abs=1 / 200,  # type: ignore[operator]
    )
    # No walking after: the log ends lying still.
    assert truth.duration_s == pytest.approx(event.rest_offset_s + 1.0 + 10.0, abs=0.1)


def test_sensors_can_be_left_out(tmp_path: Path) -> None:
    spec = RideSpec(
        seed=2, scenario="city", riding_s=60.0, sample_rate_hz=100.0,
        with_mag=False, with_gnss=False,
    )  # fmt: skip
    path = tmp_path / "bare.slog"
    write_ride(spec, path)
    _check_log(path, spec)
    assert read_log(path).imu.dtype.itemsize == 16


def test_start_on_the_bike_without_walking(tmp_path: Path) -> None:
    spec = RideSpec(
        seed=2, scenario="city", riding_s=60.0, sample_rate_hz=100.0,
        walk_before_s=0.0, walk_after_s=0.0,
    )  # fmt: skip
    from firmware_bridge.synth import synthesise

    ride = synthesise(spec)
    assert ride.activity[0] == Activity.STOPPED
    assert Activity.WALKING not in set(np.unique(ride.activity))


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"scenario": "moon"}, "scenario"),
        ({"riding_s": -1.0}, "riding_s"),
        ({"sample_rate_hz": 5.0}, "sample_rate_hz"),
        ({"crash": "wheelie"}, "crash"),
        ({"crash": "lowside", "crash_at_s": 500.0}, "crash_at_s"),
        ({"accel_full_scale_g": 12}, "accel_full_scale_g"),
        ({"gyro_full_scale_dps": 3000}, "gyro_full_scale_dps"),
        ({"gnss_rate_hz": 100.0}, "gnss_rate_hz"),
        ({"suit_serial": "S" * 17}, "suit_serial"),
        ({"counter_start_us": 1 << 32}, "counter_start_us"),
        ({"riding_s": 0.0, "walk_before_s": 0.0, "walk_after_s": 0.0}, "walk_before_s"),
    ],
)
def test_bad_specs_name_the_field(change: dict[str, object], field: str) -> None:
    base = RideSpec(seed=1, scenario="city", riding_s=100.0)
    spec = replace(base, **change)  # type: ignore[arg-type]
    with pytest.raises(SynthSpecError, match=f"'{field}"):
        plan_ride(spec)


def test_reference_specs_make_50_and_250_megabytes() -> None:
    for size, megabytes in (("50MB", 50), ("250MB", 250)):
        spec = reference_spec(size)  # type: ignore[arg-type]
        assert spec == reference_spec(size)  # type: ignore[arg-type]
        assert spec.sample_rate_hz == 1000.0 and spec.with_mag and spec.crash is None
        # 22 bytes per sample, block framing and 5 Hz GNSS: ~22.16 bytes/sample.
        size_mb = plan_ride(spec).n_samples * 22.16 / 1e6
        assert size_mb == pytest.approx(megabytes, rel=0.03)
    with pytest.raises(SynthSpecError):
        reference_spec("1GB")  # type: ignore[arg-type]


def test_crash_time_without_a_crash_is_ignored() -> None:
    spec = RideSpec(seed=1, scenario="city", riding_s=60.0, crash_at_s=30.0)
    assert plan_ride(spec).crash is None
