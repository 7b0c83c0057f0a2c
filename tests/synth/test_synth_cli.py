"""firmware-bridge synth and decode: files, output and exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from firmware_bridge.cli import (
    EXIT_BAD_INPUT,
    EXIT_OK,
    EXIT_OUTPUT,
    EXIT_USAGE,
    main,
)
from firmware_bridge.logformat import raw_to_physical, read_log


def _synth(out: Path, *extra: str) -> int:
    return main(
        ["synth", "--out", str(out), "--scenario", "city", "--riding-s", "40",
         "--rate-hz", "100", "--walk-before-s", "10", "--walk-after-s", "10", *extra]
    )  # fmt: skip


@pytest.fixture
def crash_log(tmp_path: Path) -> Path:
    out = tmp_path / "logs"
    wrap = str((1 << 32) - 20_000_000)  # wraps 20 s into the log
    assert _synth(out, "--crash", "lowside", "--counter-start-us", wrap) == EXIT_OK
    (path,) = out.glob("*.slog")
    return path


def test_synth_writes_logs_and_truth_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "logs"
    code = _synth(out, "--seed", "3", "--count", "2", "--crash", "random")
    assert code == EXIT_OK
    logs = sorted(out.glob("*.slog"))
    assert len(logs) == 2
    printed = capsys.readouterr().out
    for log in logs:
        truth = json.loads(Path(f"{log}.truth.json").read_text())
        assert log.stem == truth["log_id"] == read_log(log).header.log_id
        assert truth["crash"]["detected"] is True
        assert str(log) in printed
    starts = {
        json.loads(Path(f"{p}.truth.json").read_text())["start_utc"] for p in logs
    }
    assert len(starts) == 2
    assert not list(out.glob("*.partial"))


def test_synth_is_reproducible(tmp_path: Path) -> None:
    assert _synth(tmp_path / "a", "--seed", "4") == EXIT_OK
    assert _synth(tmp_path / "b", "--seed", "4") == EXIT_OK
    (a,), (b,) = (tmp_path / "a").glob("*.slog"), (tmp_path / "b").glob("*.slog")
    assert a.name == b.name and a.read_bytes() == b.read_bytes()


def test_decode_summary(crash_log: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["decode", str(crash_log)]) == EXIT_OK
    text = capsys.readouterr().out
    truth = json.loads(Path(f"{crash_log}.truth.json").read_text())
    assert f"samples:         {truth['samples']} " in text
    assert "1 counter wraps" in text
    assert "AIRBAG_DEPLOYED" in text
    assert f"gnss records:    {truth['gnss_records']} " in text
    assert "SUIT-0001" in text


def test_decode_to_csv_in_physical_units_with_unwrapped_time(
    crash_log: Path, tmp_path: Path
) -> None:
    out = tmp_path / "ride.csv"
    assert main(["decode", str(crash_log), "--out", str(out)]) == EXIT_OK
    table = np.genfromtxt(out, delimiter=",", names=True)
    log = read_log(crash_log)
    assert len(table) == len(log.imu)
    np.testing.assert_allclose(np.diff(table["t_s"]), 0.01, atol=1e-6)
    np.testing.assert_array_equal(table["t_us"], log.imu["t_us"])
    acc = raw_to_physical(log.imu["acc"], log.header.accel_full_scale_g)
    np.testing.assert_allclose(table["acc_z_g"], acc[:, 2], atol=1e-5)
    gyr = raw_to_physical(log.imu["gyr"], log.header.gyro_full_scale_dps)
    np.testing.assert_allclose(table["gyr_x_dps"], gyr[:, 0], atol=1e-3)
    assert "mag_z_ut" in (table.dtype.names or ())

    events = np.genfromtxt(tmp_path / "ride.events.csv", delimiter=",", names=True)
    truth = json.loads(Path(f"{crash_log}.truth.json").read_text())
    airbag_s = truth["crash"]["events"][0]["airbag_offset_s"]
    assert float(events["t_s"]) == pytest.approx(airbag_s, abs=1e-6)
    gnss = np.genfromtxt(tmp_path / "ride.gnss.csv", delimiter=",", names=True)
    assert len(gnss) == len(log.gnss)
    assert np.all(np.diff(gnss["t_s"]) > 0)


@pytest.mark.parametrize("content", [b"", b"definitely not a suit log" * 10])
def test_decode_rejects_bad_input(
    tmp_path: Path, content: bytes, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "junk.slog"
    path.write_bytes(content)
    assert main(["decode", str(path)]) == EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert str(path) in err and "at byte 0" in err


def test_decode_missing_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["decode", str(tmp_path / "none.slog")]) == EXIT_BAD_INPUT
    assert "none.slog" in capsys.readouterr().err


def test_decode_damaged_block_names_the_offset(
    crash_log: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = bytearray(crash_log.read_bytes())
    data[5000] ^= 0xFF
    damaged = tmp_path / "damaged.slog"
    damaged.write_bytes(bytes(data))
    assert main(["decode", str(damaged), "--out", str(tmp_path / "x.csv")]) == (
        EXIT_BAD_INPUT
    )
    err = capsys.readouterr().err
    assert "damaged.slog: at byte" in err and "block_crc32" in err
    assert not list(tmp_path.glob("x*")), "a failed decode leaves no CSV behind"


def test_decode_unwritable_output(crash_log: Path, tmp_path: Path) -> None:
    out = tmp_path / "missing-folder" / "ride.csv"
    assert main(["decode", str(crash_log), "--out", str(out)]) == EXIT_OUTPUT


def test_synth_output_folder_is_a_file(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert _synth(blocker) == EXIT_OUTPUT


@pytest.mark.parametrize(
    "argv",
    [
        ["synth", "--out", "x", "--reference", "50MB", "--seed", "2"],
        ["synth", "--out", "x", "--rate-hz", "5"],
        ["synth", "--out", "x", "--no-clock", "--start-utc", "2025-01-01T00:00Z"],
        ["synth", "--out", "x", "--start-utc", "yesterday"],
        ["synth", "--out", "x", "--count", "0"],
        ["frobnicate"],
        ["synth"],
    ],
)
def test_usage_errors(argv: list[str], tmp_path: Path) -> None:
    argv = [a if a != "x" else str(tmp_path / "x") for a in argv]
    assert main(argv) == EXIT_USAGE
    assert not (tmp_path / "x").exists()


def test_help_documents_every_exit_code(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["--help"], ["synth", "--help"], ["decode", "--help"]):
        assert main(argv) == EXIT_OK
        text = capsys.readouterr().out
        assert "exit codes:" in text
        for code in ("0 ", "1 ", "2 ", "3 ", "4 ", "130"):
            assert f"  {code}" in text
