"""Column recognition: spellings, units in headers, overrides, ambiguity."""

from __future__ import annotations

import pytest

from edge_agent.ingest.columns import field_for, map_columns, parse_overrides
from edge_agent.processing import CsvValueError, MissingColumnError


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("Time", ("time", None)),
        ("timestamp", ("time", None)),
        ("t", ("time", None)),
        ("time_ms", ("time", "ms")),
        ("Time (s)", ("time", "s")),
        ("Ax", ("acc_x", None)),
        ("acc_y", ("acc_y", None)),
        ("accel_z", ("acc_z", None)),
        ("acc_x_mps2", ("acc_x", "m/s2")),
        ("Ay [g]", ("acc_y", "g")),
        ("Gx", ("gyr_x", None)),
        ("gyro_y", ("gyr_y", None)),
        ("gyr_z_rads", ("gyr_z", "rad/s")),
        ("Gz (deg/s)", ("gyr_z", "deg/s")),
        ("Mx", ("mag_x", None)),
        ("mag_y_ut", ("mag_y", "uT")),
        ("LAT", ("lat", None)),
        ("latitude", ("lat", None)),
        ("LNG", ("lon", None)),
        ("lon", ("lon", None)),
        ("Longitude", ("lon", None)),
        ("ALT", ("alt", None)),
        ("altitude", ("alt", None)),
        ("speed", ("speed", None)),
        ("speed_kmh", ("speed", "km/h")),
        ("\ufeffTime", ("time", None)),
        ("comment", None),
        ("acc_x_furlongs", None),
    ],
)
def test_header_spellings(header: str, expected: tuple[str, str | None] | None) -> None:
    assert field_for(header) == expected


def test_map_columns_finds_every_field() -> None:
    headers = ["Time", "Ax", "Ay", "Az", "Gx", "Gy", "Gz", "LAT", "LNG", "ALT"]
    mapped = map_columns(headers, {}, "f.csv")
    assert {f: c.index for f, c in mapped.columns.items()} == {
        "time": 0, "acc_x": 1, "acc_y": 2, "acc_z": 3, "gyr_x": 4, "gyr_y": 5,
        "gyr_z": 6, "lat": 7, "lon": 8, "alt": 9,
    }  # fmt: skip
    assert mapped.has_gnss and not mapped.has_mag


def test_override_wins_over_recognition() -> None:
    headers = ["t", "clock", "ax", "ay", "az", "gx", "gy", "gz"]
    mapped = map_columns(headers, {"time": "clock"}, "f.csv")
    assert mapped.columns["time"].header == "clock"
    # Field names in overrides may use any recognised spelling.
    mapped = map_columns(["a", "b", "c", "d", "e", "f", "g"],
                         {"Time": "a", "Ax": "b", "acc_y": "c", "accel_z": "d",
                          "Gx": "e", "gyro_y": "f", "gyr_z": "g"}, "f.csv")  # fmt: skip
    assert [mapped.columns[f].index for f in ("time", "acc_x", "gyr_z")] == [0, 1, 6]


def test_missing_required_column_names_it() -> None:
    with pytest.raises(MissingColumnError) as caught:
        map_columns(["Time", "Ax", "Ay", "Az", "Gx", "Gy"], {}, "ride.csv")
    assert "ride.csv" in str(caught.value) and "gyr_z" in str(caught.value)


def test_override_to_an_absent_header_is_an_error() -> None:
    headers = ["Time", "Ax", "Ay", "Az", "Gx", "Gy", "Gz"]
    with pytest.raises(MissingColumnError, match="no column 'Zeit'"):
        map_columns(headers, {"time": "Zeit"}, "ride.csv")


def test_unknown_override_field() -> None:
    with pytest.raises(CsvValueError, match="unknown field"):
        map_columns(["Time"], {"temperature": "Time"}, "ride.csv")


def test_two_columns_for_one_field_is_ambiguous() -> None:
    headers = ["Time", "timestamp", "Ax", "Ay", "Az", "Gx", "Gy", "Gz"]
    with pytest.raises(CsvValueError, match="both look like field 'time'"):
        map_columns(headers, {}, "ride.csv")
    mapped = map_columns(headers, {"time": "timestamp"}, "ride.csv")
    assert mapped.columns["time"].index == 1


def test_half_a_magnetometer_is_an_error() -> None:
    headers = ["Time", "Ax", "Ay", "Az", "Gx", "Gy", "Gz", "Mx", "My"]
    with pytest.raises(MissingColumnError, match="mag_z"):
        map_columns(headers, {}, "ride.csv")


def test_parse_column_overrides() -> None:
    assert parse_overrides(["time=Zeit", " Ax = Beschl X "]) == {
        "time": "Zeit",
        "Ax": "Beschl X",
    }
    for bad in (["time"], ["=Zeit"], ["time="], ["t=a", "t=b"]):
        with pytest.raises(ValueError, match="--column"):
            parse_overrides(bad)
