"""Round trips through LogWriter and LogReader: records, wrap, unknown blocks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from format_helpers import block_offsets, build_log

from firmware_bridge.logformat import (
    BlockType,
    LogReader,
    physical_to_raw,
    raw_to_physical,
    read_log,
)


def _write(tmp_path: Path, data: bytes, name: str = "ride.slog") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("with_mag", [True, False])
def test_roundtrip_keeps_header_samples_events_and_gnss(
    tmp_path: Path, with_mag: bool
) -> None:
    built = build_log(n=300, with_mag=with_mag)
    log = read_log(_write(tmp_path, built.data))

    assert log.header == built.header
    assert log.header.start_utc is not None
    assert log.header.start_utc.isoformat() == "2025-06-14T07:30:00+00:00"
    assert len(log.imu) == 300
    np.testing.assert_array_equal(log.imu["t_us"], built.t_us)
    np.testing.assert_array_equal(log.imu["acc"], built.acc)
    np.testing.assert_array_equal(log.imu["gyr"], built.gyr)
    if with_mag:
        np.testing.assert_array_equal(log.imu["mag"], built.mag)
    else:
        assert "mag" not in (log.imu.dtype.names or ())
    assert [
        tuple(int(x) for x in e[["t_us", "kind", "value"]]) for e in log.events
    ] == (built.events)
    np.testing.assert_array_equal(log.gnss, built.gnss)


def test_record_sizes_are_22_and_16_bytes(tmp_path: Path) -> None:
    for with_mag, size in ((True, 22), (False, 16)):
        built = build_log(n=64, with_mag=with_mag)
        imu = [b for b in block_offsets(built.data) if b[1] == BlockType.IMU]
        assert imu[0][3] == 64 * size


def test_header_without_clock_decodes_to_none(tmp_path: Path) -> None:
    from dataclasses import replace

    from firmware_bridge.logformat import LogWriter

    built = build_log(n=10)
    header = replace(built.header, start_utc_us=None)
    path = tmp_path / "noclock.slog"
    with open(path, "wb") as stream:
        LogWriter(stream, header).close()
    log = read_log(path)
    assert log.header.start_utc_us is None
    assert log.header.start_utc is None
    assert len(log.imu) == 0


def test_physical_conversion_round_trips_within_half_a_count_and_clips() -> None:
    values = np.array([[-20.0, -3.2, 0.0], [0.00049, 7.99, 15.9]])
    raw = physical_to_raw(values, 16)
    back = raw_to_physical(raw, 16)
    inside = np.abs(values) < 16
    assert np.all(np.abs(back[inside] - values[inside]) <= 16 / 32768 / 2 + 1e-7)
    assert raw[0, 0] == -32768  # saturated
    assert physical_to_raw(np.array([99.0]), 16)[0] == 32767


def test_counter_wrap_survives_encode_and_decode(tmp_path: Path) -> None:
    start = (1 << 32) - 150_500  # wraps between sample 150 and 151
    built = build_log(n=300, counter_start_us=start)
    log = read_log(_write(tmp_path, built.data))

    t = log.imu["t_us"].astype(np.int64)
    np.testing.assert_array_equal(log.imu["t_us"], built.t_us)
    steps = np.diff(t)
    assert np.count_nonzero(steps < 0) == 1
    assert int(np.argmax(steps < 0)) == 150
    unwrapped = t + (1 << 32) * np.concatenate([[0], np.cumsum(steps < -(1 << 31))])
    np.testing.assert_array_equal(np.diff(unwrapped), 1000)


def test_unknown_block_type_is_skipped_and_counted(tmp_path: Path) -> None:
    built = build_log(n=300, unknown_block=True)
    assert any(b[1] == 99 for b in block_offsets(built.data))
    path = _write(tmp_path, built.data)
    with open(path, "rb") as stream:
        reader = LogReader(stream, source=str(path))
        kinds = [block.kind for block in reader.blocks()]
        assert reader.skipped_blocks == 1
    assert 99 not in kinds
    log = read_log(path)
    np.testing.assert_array_equal(log.imu["acc"], built.acc)
    assert len(log.gnss) == 3 and len(log.events) == 1


def test_side_records_follow_the_imu_block_that_covers_their_time(
    tmp_path: Path,
) -> None:
    built = build_log(n=300)
    path = _write(tmp_path, built.data)
    last_imu_end = None
    with open(path, "rb") as stream:
        for block in LogReader(stream, source=str(path)).blocks():
            if block.kind == BlockType.IMU:
                last_imu_end = int(block.records["t_us"][-1])
                first = int(block.records["t_us"][0])
                continue
            assert last_imu_end is not None
            for t in block.records["t_us"]:
                assert first <= int(t) <= last_imu_end


def test_empty_log_has_header_only(tmp_path: Path) -> None:
    built = build_log(n=0)
    assert len(built.data) == 96
    log = read_log(_write(tmp_path, built.data))
    assert len(log.imu) == len(log.events) == len(log.gnss) == 0
