"""``edge-agent ingest`` on the real recorded ride and on bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edge_agent.cli import main

REAL_RIDE = (
    Path(__file__).resolve().parents[2].parent
    / "shared/data/real/bicycle-ride/ArduinoLog.csv"
)
UNITS = ["--time-unit", "ms", "--accel-unit", "g", "--gyro-unit", "deg/s"]


def _ingest(workdir: Path, *files: Path, units: list[str] = UNITS) -> int:
    argv = ["ingest", "--workdir", str(workdir), "--rider", "r1", "--suit", "bike1"]
    return main([*argv, *units, *map(str, files)])


def _still_export(path: Path) -> Path:
    """Write 6 s of a suit lying still, logged at 100 Hz without units."""
    rows = "".join(f"{i * 10},0,0,1,0,0,0\n" for i in range(600))
    path.write_text("Time,Ax,Ay,Az,Gx,Gy,Gz\n" + rows)
    return path


def _analytics(workdir: Path) -> list[dict[str, object]]:
    found = sorted((workdir / "store" / "analytics").rglob("*.json"))
    return [
        json.loads(p.read_text()) for p in found if not p.name.endswith(".meta.json")
    ]


@pytest.mark.skipif(not REAL_RIDE.exists(), reason="shared real data not present")
def test_real_bicycle_ride_is_imported(tmp_path: Path) -> None:
    assert _ingest(tmp_path, REAL_RIDE) == 0

    (analytics,) = _analytics(tmp_path)
    assert 10.3 <= analytics["distance_km"] <= 11.5  # type: ignore[operator]
    assert abs(analytics["duration_s"] - 2436) <= 24.36  # type: ignore[operator]
    assert 15 <= analytics["avg_speed_kmh"] <= 19  # type: ignore[operator]
    assert analytics["start_utc"] is None
    assert analytics["turns_left"] is not None and analytics["turns_right"] is not None
    crash = analytics["crash"]
    assert isinstance(crash, dict)
    assert crash["detected"] is None and "Hz" in crash["reason"]
    csv = list((tmp_path / "store" / "raw").rglob("*.csv.gz"))
    assert len(csv) == 1


def test_bad_files_are_quarantined_and_the_rest_goes_on(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = tmp_path / "good.csv"
    rows = ["t,ax,ay,az,gx,gy,gz"]
    rows += [f"{i * 10},0,0,1,0,0,0" for i in range(600)]
    good.write_text("\n".join(rows) + "\n")
    truncated = tmp_path / "broken.slog"
    truncated.write_bytes(b"SUITLOG\x1a" + b"\x01\x00")
    nan_only = tmp_path / "nan.csv"
    nan_only.write_text("t,ax,ay,az,gx,gy,gz\n0,nan,nan,nan,nan,nan,nan\n")

    code = _ingest(tmp_path / "work", truncated, good, nan_only)

    out = capsys.readouterr().out
    assert code == 4
    assert "broken.slog" in out and "byte" in out
    assert "nan.csv" in out
    # Reasons name the operator's files, not the buffer's copies of them.
    rejected = [line for line in out.splitlines() if line.startswith("rejected ")]
    assert len(rejected) == 2
    assert not any("buffer" in line for line in rejected), rejected
    assert f"rejected {truncated}: " in out
    assert len(_analytics(tmp_path / "work")) == 1
    quarantine = tmp_path / "work" / "buffer" / "quarantine"
    assert len([p for p in quarantine.iterdir() if p.is_dir()]) == 2
    # The operator's originals are untouched.
    assert truncated.read_bytes().startswith(b"SUITLOG")
    # Importing the same bad file again tries it anew: refused again, and the
    # first refusal's quarantine entry is kept beside the new one.
    assert _ingest(tmp_path / "work", truncated) == 4
    out = capsys.readouterr().out
    assert f"rejected {truncated}: " in out and "byte" in out
    assert len([p for p in quarantine.iterdir() if p.is_dir()]) == 3


def test_refused_import_is_taken_again_with_the_missing_options(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    csv = _still_export(tmp_path / "export.csv")
    argv = ["ingest", "--workdir", str(tmp_path / "work"), "--suit", "bike1"]
    assert main([*argv, "--rider", "r9", str(csv)]) == 4
    assert "--time-unit" in capsys.readouterr().out
    # Taken again with the options, for the rider this import names.
    assert _ingest(tmp_path / "work", csv) == 0
    out = capsys.readouterr().out
    assert "rejected" not in out and f"{csv} -> " in out
    [analytics] = _analytics(tmp_path / "work")
    assert analytics["rider_id"] == "r1"


def test_missing_unit_options_name_the_file_and_option(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    csv = tmp_path / "export.csv"
    csv.write_text("Time,Ax,Ay,Az,Gx,Gy,Gz\n" + "0,0,0,1,0,0,0\n" * 10)

    code = _ingest(tmp_path / "work", csv, units=[])

    out = capsys.readouterr().out
    assert code == 4
    assert "export.csv" in out and "--time-unit" in out


@pytest.mark.parametrize("rider", ["../../etc", "a/b", ".", ""])
def test_ids_no_object_key_can_hold_are_a_usage_error(
    tmp_path: Path, rider: str, capsys: pytest.CaptureFixture[str]
) -> None:
    log = tmp_path / "ride.slog"
    log.write_bytes(b"")
    workdir = tmp_path / "w"
    argv = ["ingest", "--workdir", str(workdir), "--rider", rider, "--suit", "s1"]
    assert main([*argv, str(log)]) == 2
    assert "cannot be a key segment" in capsys.readouterr().err
    assert not workdir.exists()


def test_a_file_imported_for_one_rider_is_not_silently_given_to_another(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    csv = _still_export(tmp_path / "export.csv")
    assert _ingest(tmp_path / "work", csv) == 0
    capsys.readouterr()
    argv = ["ingest", "--workdir", str(tmp_path / "work"), "--rider", "r2"]
    assert main([*argv, "--suit", "bike1", *UNITS, str(csv)]) == 4
    out = capsys.readouterr().out
    assert f"rejected {csv}: imported before as log " in out
    assert "of rider r1, suit bike1" in out
    assert len(_analytics(tmp_path / "work")) == 1


def test_unknown_column_field_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    csv = tmp_path / "export.csv"
    csv.write_text("Time,Ax,Ay,Az,Gx,Gy,Gz\n0,0,0,1,0,0,0\n")
    argv = ["--rider", "r1", "--suit", "s1", "--column", "temperature=Time", str(csv)]
    assert main(["ingest", "--workdir", str(tmp_path / "w"), *argv]) == 2
    assert "unknown field 'temperature'" in capsys.readouterr().err
