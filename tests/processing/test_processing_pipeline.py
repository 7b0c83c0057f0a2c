"""process_log end to end on small logs: each cleaning case, CSV and JSON."""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path

import numpy as np
import pytest

from edge_agent.processing import (
    ANALYTICS_SCHEMA,
    NoSamplesError,
    ProcessOptions,
    process_log,
)
from tests.processing.builders import RestLog, gnss_records, write_log

ANALYTICS_FIELDS = [
    "schema", "log_id", "suit_id", "rider_id", "start_utc", "end_utc",
    "duration_s", "samples", "sample_rate_hz", "distance_km", "avg_speed_kmh",
    "max_speed_kmh", "max_accel_g", "max_decel_g", "max_lean_left_deg",
    "max_lean_right_deg", "turns_left", "turns_right", "hard_braking_events",
    "crash", "quality", "model", "software_version",
]  # fmt: skip
QUALITY_FIELDS = [
    "duplicates", "gaps", "out_of_order", "saturated_samples", "counter_wraps",
    "rejected_rows",
]  # fmt: skip


def _read_csv(path: Path) -> tuple[list[str], list[list[str]]]:
    with gzip.open(path, "rt", encoding="ascii") as stream:
        lines = stream.read().splitlines()
    return lines[0].split(","), [line.split(",") for line in lines[1:]]


def _process(tmp_path: Path, log: RestLog, options: ProcessOptions, **kw):
    path = write_log(tmp_path / "ride.slog", log, **kw)
    return process_log(
        path, "rider-1", "SUIT-TEST", tmp_path / "out", None, options=options
    )


def test_clean_log_gives_every_analytics_field(tmp_path: Path, fast_options) -> None:
    log = RestLog(n=12_000)
    result = _process(tmp_path, log, fast_options)
    analytics = result.analytics
    assert list(analytics) == ANALYTICS_FIELDS
    assert analytics["schema"] == ANALYTICS_SCHEMA
    assert list(analytics["quality"]) == QUALITY_FIELDS
    assert analytics["samples"] == 12_000
    assert analytics["duration_s"] == pytest.approx(11.999)
    assert analytics["start_utc"] == "2025-06-15T15:06:40.000000Z"
    assert analytics["end_utc"] == "2025-06-15T15:06:51.999000Z"
    assert analytics["quality"] == dict.fromkeys(QUALITY_FIELDS, 0)
    # No GNSS fix at all: nothing about distance or speed can be said.
    assert analytics["distance_km"] is None
    assert analytics["max_speed_kmh"] is None
    assert analytics["crash"] == {
        "detected": None, "events": [], "reason": "no crash model is installed"
    }  # fmt: skip
    assert abs(analytics["max_lean_left_deg"]) < 2
    assert json.loads(result.analytics_path.read_text()) == analytics


def test_counter_wrap_is_unwrapped(tmp_path: Path, fast_options) -> None:
    log = RestLog(n=8000, counter_start_us=(1 << 32) - 3_000_000)
    result = _process(tmp_path, log, fast_options)
    assert result.quality.counter_wraps == 1
    assert result.analytics["duration_s"] == pytest.approx(7.999)
    _, rows = _read_csv(result.csv_path)
    t_s = np.array([float(r[0]) for r in rows])
    assert np.allclose(np.diff(t_s), 0.001)


def test_repeated_block_counts_duplicates(tmp_path: Path, fast_options) -> None:
    log = RestLog(n=6144)
    blocks = [log.records[i : i + 1024] for i in range(0, 6144, 1024)]
    blocks.insert(3, blocks[2])  # the firmware wrote block 2 twice
    result = _process(tmp_path, log, fast_options, blocks=blocks)
    assert result.quality.duplicates == 1024
    assert result.samples == 6144
    assert result.quality.out_of_order == 0


def test_swapped_blocks_are_put_back_in_order(tmp_path: Path, fast_options) -> None:
    log = RestLog(n=6144)
    blocks = [log.records[i : i + 1024] for i in range(0, 6144, 1024)]
    blocks[2], blocks[3] = blocks[3], blocks[2]
    result = _process(tmp_path, log, fast_options, blocks=blocks)
    assert result.quality.out_of_order == 1024
    assert result.quality.duplicates == 0
    assert result.quality.gaps == 0
    _, rows = _read_csv(result.csv_path)
    t_s = np.array([float(r[0]) for r in rows])
    assert len(t_s) == 6144 and np.all(np.diff(t_s) > 0)


def test_missing_samples_count_as_gaps(tmp_path: Path, fast_options) -> None:
    log = RestLog(n=9000)
    kept = np.concatenate([np.arange(0, 3000), np.arange(3400, 7000),
                           np.arange(7002, 9000)])  # fmt: skip
    log.records = log.records[kept]
    log.n = len(kept)
    result = _process(tmp_path, log, fast_options)
    assert result.quality.gaps == 2
    assert result.samples == len(kept)


def test_saturated_samples_are_flagged(tmp_path: Path, fast_options) -> None:
    log = RestLog(n=5000)
    log.records["acc"][1000:1010, 0] = 32767
    log.records["gyr"][2000:2003, 2] = -32768
    result = _process(tmp_path, log, fast_options)
    assert result.quality.saturated_samples == 13
    header, rows = _read_csv(result.csv_path)
    flags = np.array([int(r[header.index("saturated")]) for r in rows])
    assert np.flatnonzero(flags).tolist() == [*range(1000, 1010), *range(2000, 2003)]


def test_csv_is_gzip_with_columns_and_fixed_decimals(tmp_path: Path) -> None:
    log = RestLog(n=20_000)
    options = ProcessOptions(chunk_s=3.0, fsync=False)
    fix_t = log.records["t_us"][[5000, 15000]]
    gnss = [(5, gnss_records(fix_t, [44.5, 44.5001], [11.3, 11.3], [0.0, 0.0]))]
    path = write_log(tmp_path / "ride.slog", log, gnss=gnss)
    result = process_log(path, "r", "s", tmp_path / "out", None, options=options)

    raw = result.csv_path.read_bytes()
    assert raw.count(b"\x1f\x8b\x08") >= 2  # several gzip members, one file
    header, rows = _read_csv(result.csv_path)
    assert header == [
        "t_s", "t_utc", "acc_x_mps2", "acc_y_mps2", "acc_z_mps2", "gyr_x_rads",
        "gyr_y_rads", "gyr_z_rads", "mag_x_ut", "mag_y_ut", "mag_z_ut",
        "lean_deg", "lat_deg", "lon_deg", "alt_m", "speed_mps", "saturated",
    ]  # fmt: skip
    assert len(rows) == 20_000
    decimals = {"t_s": 6, "acc_x_mps2": 3, "gyr_x_rads": 4, "mag_x_ut": 2,
                "lean_deg": 1}  # fmt: skip
    for name, places in decimals.items():
        column = [r[header.index(name)] for r in rows]
        assert all(re.fullmatch(rf"-?\d+\.\d{{{places}}}", v) for v in column), name
    assert rows[0][1] == "2025-06-15 15:06:40.000000"
    assert rows[1234][1] == "2025-06-15 15:06:41.234000"
    # Values are SI: about 9.81 m/s² up at rest.
    acc_z = np.array([float(r[header.index("acc_z_mps2")]) for r in rows])
    assert acc_z.mean() == pytest.approx(9.80665, abs=0.02)
    # Each GNSS fix appears once, on the sample at its time.
    lat = [r[header.index("lat_deg")] for r in rows]
    assert [i for i, v in enumerate(lat) if v] == [5000, 15000]
    assert lat[15000] == "44.5001000"


def test_csv_without_wall_clock_has_no_utc_column(tmp_path: Path, fast_options) -> None:
    log = RestLog(n=3000, start_utc_us=None)
    result = _process(tmp_path, log, fast_options)
    header, _ = _read_csv(result.csv_path)
    assert "t_utc" not in header
    assert result.analytics["start_utc"] is None
    assert result.analytics["end_utc"] is None


def test_compression_level_is_configurable(tmp_path: Path) -> None:
    log = RestLog(n=20_000)
    path = write_log(tmp_path / "ride.slog", log)
    sizes = []
    for level in (1, 9):
        options = ProcessOptions(compresslevel=level, fsync=False)
        result = process_log(
            path, "r", "s", tmp_path / f"l{level}", None, options=options
        )
        sizes.append(result.csv_path.stat().st_size)
    assert sizes[1] < sizes[0]


def test_log_with_no_samples_is_refused(tmp_path: Path, fast_options) -> None:
    log = RestLog(n=0)
    path = write_log(tmp_path / "empty.slog", log, blocks=[])
    with pytest.raises(NoSamplesError, match=r"empty\.slog"):
        process_log(path, "r", "s", tmp_path / "out", None, options=fast_options)
    assert list((tmp_path / "out").iterdir()) == []


def test_gnss_distance_and_speed(tmp_path: Path, fast_options) -> None:
    log = RestLog(n=60_000)  # 60 s
    # 10 m/s due north for 50 s, one fix per second.
    index = np.arange(5000, 55_001, 1000)
    t_fix = log.records["t_us"][index]
    north_m = (index - 5000) / 1000 * 10.0
    lat = 44.5 + np.degrees(north_m / 6_371_008.8)
    gnss = [(int(i) // 1024, gnss_records(t, la, 11.3, 10.0))
            for i, t, la in zip(index, t_fix, lat, strict=True)]  # fmt: skip
    result = _process(tmp_path, log, fast_options, gnss=gnss)
    # 500 m between the fixes, and the speed of the first and last fix held
    # for the 5 s before and after them.
    assert result.analytics["distance_km"] == pytest.approx(0.6, rel=0.01)
    assert result.analytics["max_speed_kmh"] == pytest.approx(36.0, rel=0.01)
    assert result.analytics["avg_speed_kmh"] == pytest.approx(36.0, rel=0.01)


class _CollectingSink:
    """A CSV sink that keeps what it is given (the benchmark's hook)."""

    def __init__(self, path: Path, columns: list) -> None:
        self.columns = [c.name for c in columns]
        self.rows = 0
        self.size_bytes = 0
        self.thread_cpu_s = 0.0
        self.closed = False
        self.chunks: list[dict] = []

    def write(self, values: dict) -> None:
        assert set(values) == set(self.columns)
        self.chunks.append(values)
        self.rows += len(values["t_s"])

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.chunks.clear()


def test_another_csv_sink_gets_every_row_in_order(tmp_path: Path) -> None:
    sinks: list[_CollectingSink] = []

    def make(path: Path, columns: list) -> _CollectingSink:
        sinks.append(_CollectingSink(path, columns))
        return sinks[-1]

    log = RestLog(n=9000)
    path = write_log(tmp_path / "ride.slog", log)
    options = ProcessOptions(chunk_s=2.0, fsync=False, csv_sink=make)
    result = process_log(path, "r", "s", tmp_path / "out", None, options=options)
    [sink] = sinks
    assert sink.closed and sink.rows == result.samples == 9000
    t_s = np.concatenate([chunk["t_s"] for chunk in sink.chunks])
    assert np.array_equal(t_s, np.arange(9000) * 1000)
