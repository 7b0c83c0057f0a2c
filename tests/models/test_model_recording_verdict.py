"""``crash-model evaluate --recording``: recorded files get the gateway's verdict."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from models.cli import main

REAL_RIDE = (
    Path(__file__).resolve().parents[2].parent
    / "shared/data/real/bicycle-ride/ArduinoLog.csv"
)
UNITS = ["--time-unit", "ms", "--accel-unit", "g", "--gyro-unit", "deg/s"]


@pytest.mark.skipif(not REAL_RIDE.exists(), reason="shared real data not present")
def test_two_hertz_ride_gets_no_verdict_with_reason(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["evaluate", "--recording", str(REAL_RIDE), *UNITS]) == 0
    out = capsys.readouterr().out
    assert "no verdict: sampled at 1.87 Hz, below the 50 Hz" in out


def test_recorded_csv_at_100_hz_gets_a_verdict(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Two minutes of a suit lying still on a table, logged at 100 Hz.
    t_ms = np.arange(12_000) * 10
    rows = ["Time,Ax,Ay,Az,Gx,Gy,Gz"] + [
        f"{t},0.01,-0.02,0.99,0.1,-0.2,0.05" for t in t_ms
    ]
    path = tmp_path / "still.csv"
    path.write_text("\n".join(rows) + "\n")
    assert main(["evaluate", "--recording", str(path), *UNITS]) == 0
    out = capsys.readouterr().out
    assert "100 Hz" in out and "crash detected: false" in out


def test_unreadable_recording_is_a_dataset_error(tmp_path: Path) -> None:
    path = tmp_path / "broken.csv"
    path.write_text("not,a,suit,export\n1,2\n")
    assert main(["evaluate", "--recording", str(path), *UNITS]) == 4


def test_recording_errors_name_the_file_once_and_bad_units_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "no-units.csv"
    path.write_text("Time,Ax,Ay,Az,Gx,Gy,Gz\n0,0,0,1,0,0,0\n")
    assert main(["evaluate", "--recording", str(path)]) == 4
    error = capsys.readouterr().err
    assert error.count(str(path)) == 1 and "--time-unit" in error
    with pytest.raises(SystemExit) as exit_info:
        main(["evaluate", "--recording", str(path), "--accel-unit", "furlong"])
    assert exit_info.value.code == 2
    assert "invalid choice: 'furlong'" in capsys.readouterr().err


def test_recording_columns_can_be_named_on_the_command_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    t_ms = np.arange(12_000) * 10
    rows = ["stamp,Ax,Ay,Az,Gx,Gy,Gz"] + [f"{t},0,0,1,0,0,0" for t in t_ms]
    path = tmp_path / "stamped.csv"
    path.write_text("\n".join(rows) + "\n")
    assert main(["evaluate", "--recording", str(path), *UNITS]) == 4
    assert "--column" in capsys.readouterr().err
    named = ["--column", "time=stamp"]
    assert main(["evaluate", "--recording", str(path), *UNITS, *named]) == 0
    assert "crash detected: false" in capsys.readouterr().out
    assert main(["evaluate", "--recording", str(path), "--column", "time"]) == 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--crash-rides", "0", "--normal-rides", "0", "--offbike-sessions", "0"],
         "nothing to evaluate"),
        (["--crash-rides", "1000000"], "at most 999999"),
        (["--json", "/no/such/folder/figures.json"], "does not exist"),
    ],
)  # fmt: skip
def test_evaluation_requests_that_cannot_work_are_refused_up_front(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["evaluate", *args]) == 2
    assert message in capsys.readouterr().err
