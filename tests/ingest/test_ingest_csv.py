"""CSV import: units, layouts, rejected rows, GPS repeats, suit logs, batches."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest

from edge_agent.ingest import UnitOptions, ingest_file, ingest_files
from edge_agent.processing import (
    CsvValueError,
    ImplausibleTimeError,
    MissingUnitError,
    ProcessOptions,
    process_log,
)
from tests.processing.builders import RestLog, write_log

OPTIONS = ProcessOptions(chunk_s=5.0, fsync=False)
UNITS = UnitOptions(time_unit="ms", accel_unit="g", gyro_unit="deg/s")
EARTH_RADIUS_M = 6_371_008.8


def _export(path: Path, *, n: int = 3000, step_ms: float = 10.0, sep: str = ",",
            decimal: str = ".", header: str = "Time,Ax,Ay,Az,Gx,Gy,Gz,LAT,LNG,ALT",
            bom: bool = False, gps_every: int = 100, extra_rows: list[str] = (),
            jitter_ms: float = 0.0) -> Path:  # fmt: skip
    """Write a still suit riding north at 5 m/s as an Arduino-style export."""
    rng = np.random.default_rng(2)
    t_ms = 1000 + np.arange(n) * step_ms + rng.uniform(-jitter_ms, jitter_ms, n)
    lines = [header.replace(",", sep)]
    lat = lon = 0.0
    for i in range(n):
        if i % gps_every == 0:  # the receiver updates; rows repeat it until then
            north_m = 5.0 * (t_ms[i] - t_ms[0]) / 1000
            lat = 44.5 + np.degrees(north_m / EARTH_RADIUS_M)
            lon = 11.3
        values = [f"{t_ms[i]:.0f}", "0.01", "-0.02", "1.0", "0.5", "-0.3", "0.1",
                  f"{lat:.7f}", f"{lon:.7f}", "120.5"]  # fmt: skip
        lines.append(sep.join(v.replace(".", decimal) for v in values))
    lines += list(extra_rows)
    text = "\n".join(lines) + "\n"
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + text.encode())
    return path


def _ingest(path: Path, tmp_path: Path, units: UnitOptions = UNITS, **kw):
    return ingest_file(path, "rider", "suit", tmp_path / "out", None, units=units,
                       options=OPTIONS, **kw)  # fmt: skip


def test_arduino_style_export(tmp_path: Path) -> None:
    result = _ingest(_export(tmp_path / "a.csv"), tmp_path)
    analytics = result.analytics
    assert analytics["samples"] == 3000
    assert analytics["sample_rate_hz"] == 100.0
    assert analytics["duration_s"] == pytest.approx(29.99)
    assert analytics["start_utc"] is None
    # 29 s at 5 m/s between the first and the last fix.
    assert analytics["distance_km"] == pytest.approx(0.145, rel=0.02)
    assert analytics["quality"]["rejected_rows"] == 0
    with gzip.open(result.csv_path, "rt") as stream:
        header = stream.readline().strip().split(",")
        rows = [line.strip().split(",") for line in stream]
    assert "t_utc" not in header
    # The values are converted: g to m/s², deg/s to rad/s.
    assert float(rows[0][header.index("acc_z_mps2")]) == pytest.approx(9.8066, abs=2e-4)
    assert float(rows[0][header.index("gyr_x_rads")]) == pytest.approx(
        0.00873, abs=1e-5
    )
    # Each fix once, though the export repeats it on every row.
    lat_rows = [i for i, r in enumerate(rows) if r[header.index("lat_deg")]]
    assert lat_rows == list(range(0, 3000, 100))


def test_missing_unit_names_the_file_and_the_option(tmp_path: Path) -> None:
    path = _export(tmp_path / "a.csv")
    with pytest.raises(MissingUnitError) as caught:
        _ingest(path, tmp_path, UnitOptions(time_unit="ms", gyro_unit="deg/s"))
    message = str(caught.value)
    assert str(path) in message and "--accel-unit" in message and "'Ax'" in message


def test_wrong_time_unit_is_caught_by_the_span(tmp_path: Path) -> None:
    path = _export(tmp_path / "a.csv", n=3000, step_ms=1000)  # 50 min in ms
    units = UnitOptions(time_unit="s", accel_unit="g", gyro_unit="deg/s")
    with pytest.raises(ImplausibleTimeError, match="check the time unit") as caught:
        _ingest(path, tmp_path, units)
    assert str(path) in str(caught.value)


def test_units_declared_in_the_header_need_no_options(tmp_path: Path) -> None:
    header = (
        "time_ms,acc_x_g,acc_y_g,acc_z_g,Gx [deg/s],Gy [deg/s],Gz [deg/s],lat,lon,alt"
    )
    path = _export(tmp_path / "a.csv", header=header)
    result = _ingest(path, tmp_path, UnitOptions())
    assert result.analytics["samples"] == 3000


def test_each_axis_gets_its_own_declared_unit(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    rows = [f"{i / 100:.2f},1,1,1,1,1,1" for i in range(300)]
    header = "t_s,acc_x_g,acc_y_mps2,acc_z_g,gyr_x_rads,gyr_y_dps,gyr_z_rads"
    path.write_text(header + "\n" + "\n".join(rows) + "\n")
    result = _ingest(path, tmp_path, UnitOptions())
    with gzip.open(result.csv_path, "rt") as stream:
        names = stream.readline().strip().split(",")
        first = dict(zip(names, stream.readline().strip().split(","), strict=True))
    assert float(first["acc_x_mps2"]) == pytest.approx(9.8066, abs=2e-4)
    assert float(first["acc_y_mps2"]) == pytest.approx(1.0)
    assert float(first["gyr_y_rads"]) == pytest.approx(0.01745, abs=1e-5)
    assert float(first["gyr_z_rads"]) == pytest.approx(1.0)


def test_header_and_option_disagreeing_is_an_error(tmp_path: Path) -> None:
    header = "time_ms,acc_x_g,acc_y_g,acc_z_g,Gx,Gy,Gz,lat,lon,alt"
    path = _export(tmp_path / "a.csv", header=header)
    with pytest.raises(CsvValueError, match="declares 'g' but accel_unit says 'm/s2'"):
        _ingest(path, tmp_path, UnitOptions(time_unit="ms", accel_unit="m/s2",
                                            gyro_unit="deg/s"))  # fmt: skip


def test_bom_semicolons_and_decimal_commas(tmp_path: Path) -> None:
    path = _export(tmp_path / "a.csv", sep=";", decimal=",", bom=True)
    result = _ingest(path, tmp_path)
    assert result.analytics["samples"] == 3000
    assert result.analytics["distance_km"] == pytest.approx(0.145, rel=0.02)
    with gzip.open(result.csv_path, "rt") as stream:
        header = stream.readline().strip().split(",")
        first = stream.readline().strip().split(",")
    assert float(first[header.index("acc_x_mps2")]) == pytest.approx(0.0981, abs=1e-4)


def test_nan_empty_garbage_and_ragged_rows_are_rejected(tmp_path: Path) -> None:
    bad = [
        "31000,NaN,0,1,0,0,0,44.5,11.3,120",
        "31010,0.01,,1,0,0,0,44.5,11.3,120",
        "31020,0.01,0,1,oops,0,0,44.5,11.3,120",
        ",0.01,0,1,0,0,0,44.5,11.3,120",
        "31025,0.01,0,1,0,1e300,0,44.5,11.3,120",
        "31030,0.01,0,1,0,0,0,,,",  # no GPS on this row is fine
        "31040,0.01,0",  # truncated last line
    ]
    result = _ingest(_export(tmp_path / "a.csv", extra_rows=bad), tmp_path)
    assert result.analytics["quality"]["rejected_rows"] == 6
    assert result.analytics["samples"] == 3001


def test_irregular_sampling_rate_is_the_median_step(tmp_path: Path) -> None:
    path = _export(tmp_path / "a.csv", n=400, step_ms=500, jitter_ms=120, gps_every=2)
    result = _ingest(path, tmp_path)
    assert result.analytics["sample_rate_hz"] == pytest.approx(2.0, rel=0.05)
    crash = result.analytics["crash"]
    assert crash["detected"] is None and "below the 50 Hz" in crash["reason"]
    assert result.analytics["max_lean_left_deg"] is None


def test_text_time_stamps_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_text("Time,Ax,Ay,Az,Gx,Gy,Gz\n2025-01-01T10:00:00,0,0,1,0,0,0\n")
    with pytest.raises(CsvValueError, match="column 'Time'"):
        _ingest(path, tmp_path)


def test_unix_time_reference_gives_wall_clock(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    rows = [f"{1_750_000_000 + i / 100:.2f},0,0,1,0,0,0" for i in range(500)]
    path.write_text("t,ax,ay,az,gx,gy,gz\n" + "\n".join(rows) + "\n")
    units = UnitOptions(time_unit="s", accel_unit="g", gyro_unit="rad/s",
                        time_reference="unix")  # fmt: skip
    result = _ingest(path, tmp_path, units)
    assert result.analytics["start_utc"] == "2025-06-15T15:06:40.000000Z"
    with gzip.open(result.csv_path, "rt") as stream:
        assert stream.readline().startswith("t_s,t_utc,")


def test_suit_log_is_recognised_by_its_magic(tmp_path: Path) -> None:
    log = RestLog(n=5000)
    path = write_log(tmp_path / "export.bin", log)
    result = _ingest(path, tmp_path, UnitOptions())
    assert result.log_id == log.log_id
    assert result.samples == 5000


def test_ingest_files_keeps_going_after_a_bad_file(tmp_path: Path) -> None:
    good = _export(tmp_path / "good.csv")
    bad = tmp_path / "bad.csv"
    bad.write_text("Time,Ax,Ay\n1,2,3\n")
    outcomes = ingest_files([bad, good], "rider", "suit", tmp_path / "out", None,
                            units=UNITS, options=OPTIONS)  # fmt: skip
    assert [o.ok for o in outcomes] == [False, True]
    assert "bad.csv" in str(outcomes[0].error)
    written = json.loads(outcomes[1].result.analytics_path.read_text())
    assert written["samples"] == 3000


def test_the_pipelines_own_csv_imports_unchanged(tmp_path: Path) -> None:
    log = RestLog(n=20_000)
    first = process_log(write_log(tmp_path / "ride.slog", log), "r", "s",
                        tmp_path / "first", None, options=OPTIONS)  # fmt: skip
    plain = tmp_path / "processed.csv"
    with gzip.open(first.csv_path, "rb") as stream:
        plain.write_bytes(stream.read())
    again = _ingest(plain, tmp_path, UnitOptions())
    assert again.samples == first.samples
    assert again.analytics["sample_rate_hz"] == 1000.0
    assert again.analytics["duration_s"] == first.analytics["duration_s"]
    columns = ["acc_x_mps2", "acc_y_mps2", "acc_z_mps2", "gyr_z_rads"]
    tables = []
    for path in (first.csv_path, again.csv_path):
        with gzip.open(path, "rt") as stream:
            header = stream.readline().strip().split(",")
            index = [header.index(c) for c in columns]
            rows = [line.split(",") for line in stream.read().splitlines()]
        tables.append(np.array([[float(r[i]) for i in index] for r in rows]))
    # Values come back within the first CSV's rounding.
    np.testing.assert_allclose(tables[1], tables[0], atol=1e-3)
