"""Bad input: a clear error naming file and place, quarantine, and the agent goes on.

Each damaged file goes through ``edge-agent ingest`` into the same working
folder as a good file imported afterwards, so the test also shows the process
stays usable. The BLE case shows a corrupt log pulled from a suit is kept
aside and never released, while the suit's good log goes through.
"""

from __future__ import annotations

import io
import struct
import uuid
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from agent_helpers import SERIAL, gateway_config

from edge_agent.cli import main
from edge_agent.custody import LogState
from edge_agent.service.agent import EdgeAgent
from edge_agent.service.dock import BleBackends
from edge_agent.service.runtime import open_runtime
from firmware_bridge.ble.bleak_bumble import GatewayRadio
from firmware_bridge.ble.suit import EmulatedSuit, VirtualAir
from firmware_bridge.logformat import Channel, LogHeader, LogWriter

HEADER_BYTES = 96
BLOCK_HEADER_BYTES = 16


def _good_log(serial: str = "SUIT-BAD-01", seconds: float = 30.0) -> bytes:
    rate_hz = 200.0
    n = int(seconds * rate_hz)
    header = LogHeader(
        suit_serial=serial,
        firmware_version="FW-1.0.0",
        log_id=uuid.uuid4().hex,
        start_utc_us=1_750_000_000_000_000,
        counter_start_us=5_000,
        sample_rate_hz=rate_hz,
        accel_full_scale_g=16,
        gyro_full_scale_dps=2000,
        mag_full_scale_ut=None,
        channels=Channel.ACCEL | Channel.GYRO,
    )
    stream = io.BytesIO()
    writer = LogWriter(stream, header, samples_per_block=256)
    t_us = 5_000 + np.arange(n, dtype=np.int64) * 5_000
    acc = np.zeros((n, 3), dtype=np.int16)
    acc[:, 2] = 2048  # 1 g at 16 g full scale
    writer.write_imu(t_us, acc, np.zeros((n, 3), dtype=np.int16))
    writer.close()
    return stream.getvalue()


def _truncated(data: bytes) -> bytes:
    return data[: len(data) // 2 + 7]


def _wrong_magic(data: bytes) -> bytes:
    return b"NOTALOG!" + data[8:]


def _unknown_version(data: bytes) -> bytes:
    return data[:8] + struct.pack("<H", 9) + data[10:]


def _crc_mismatch(data: bytes) -> bytes:
    damaged = bytearray(data)
    damaged[HEADER_BYTES + BLOCK_HEADER_BYTES + 100] ^= 0xFF
    return bytes(damaged)


def _absurd_length(data: bytes) -> bytes:
    damaged = bytearray(data)
    struct.pack_into("<I", damaged, HEADER_BYTES + 12, 0x7FFF_FFF0)
    return bytes(damaged)


def _header_crc_fixed(data: bytes) -> bytes:
    head = data[: HEADER_BYTES - 4]
    return head + struct.pack("<I", zlib.crc32(head)) + data[HEADER_BYTES:]


CASES: dict[str, tuple[Callable[[bytes], bytes], str]] = {
    "truncated": (_truncated, "byte"),
    "wrong_magic": (_wrong_magic, "byte 0"),
    "unknown_version": (lambda d: _header_crc_fixed(_unknown_version(d)), "version"),
    "crc_mismatch": (_crc_mismatch, "crc"),
    "absurd_length": (_absurd_length, "payload_len"),
}


def _ingest(workdir: Path, path: Path, *units: str) -> int:
    argv = ["ingest", "--workdir", str(workdir), "--rider", "r1", "--suit", "s1"]
    return main([*argv, *units, str(path)])


@pytest.mark.parametrize("case", sorted(CASES))
def test_damaged_suit_log_is_quarantined_and_ingest_goes_on(
    tmp_path: Path, case: str, capsys: pytest.CaptureFixture[str]
) -> None:
    damage, place = CASES[case]
    bad = tmp_path / f"{case}.slog"
    bad.write_bytes(damage(_good_log()))
    workdir = tmp_path / "work"

    assert _ingest(workdir, bad) == 4
    out = capsys.readouterr().out
    assert f"{case}.slog" in out
    assert place in out.lower()
    quarantined = [p for p in (workdir / "buffer" / "quarantine").iterdir()]
    assert len(quarantined) == 1
    kept = [p for p in quarantined[0].rglob("*") if p.is_file()]
    assert any(p.read_bytes() == bad.read_bytes() for p in kept)

    good = tmp_path / "good.slog"
    good.write_bytes(_good_log())
    assert _ingest(workdir, good) == 0


CSV_CASES = {
    "comma_decimals": (
        "t;ax;ay;az;gx;gy;gz\n"
        + "".join(f"{i * 10};0,01;0,0;1,0;0,5;0;0\n" for i in range(400)),
        0,
    ),
    "byte_order_mark": (
        "\ufefft,ax,ay,az,gx,gy,gz\n"
        + "".join(f"{i * 10},0,0,1,0,0,0\n" for i in range(400)),
        0,
    ),
    "nan_rows": (
        "t,ax,ay,az,gx,gy,gz\n"
        + "".join(
            f"{i * 10},{'nan' if i % 50 == 0 else 0},0,1,0,0,0\n" for i in range(400)
        ),
        0,
    ),
    "only_nan_rows": ("t,ax,ay,az,gx,gy,gz\n" + "0,nan,nan,nan,nan,nan,nan\n" * 5, 4),
}


@pytest.mark.parametrize("case", sorted(CSV_CASES))
def test_csv_exports_with_awkward_formatting(
    tmp_path: Path, case: str, capsys: pytest.CaptureFixture[str]
) -> None:
    text, expected_code = CSV_CASES[case]
    path = tmp_path / f"{case}.csv"
    path.write_text(text, encoding="utf-8")
    units = ("--time-unit", "ms", "--accel-unit", "g", "--gyro-unit", "deg/s")

    assert _ingest(tmp_path / "work", path, *units) == expected_code
    out = capsys.readouterr().out
    if expected_code:
        assert f"{case}.csv" in out
        assert "line" in out.lower() or "rows" in out.lower()
    else:
        assert "rejected" not in out


def test_missing_unit_options_are_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "export.csv"
    path.write_text("Time,Ax,Ay,Az,Gx,Gy,Gz\n" + "0,0,0,1,0,0,0\n" * 10)
    assert _ingest(tmp_path / "work", path) == 4
    out = capsys.readouterr().out
    assert "export.csv" in out and "--time-unit" in out


@pytest.mark.timeout(300)
async def test_corrupt_log_on_a_suit_is_kept_and_never_released(
    tmp_path: Path,
) -> None:
    suit_dir = tmp_path / "suit"
    suit_dir.mkdir()
    good, bad = _good_log(SERIAL), _crc_mismatch(_good_log(SERIAL))
    (suit_dir / "good.slog").write_bytes(good)
    (suit_dir / "bad.slog").write_bytes(bad)
    air = VirtualAir()
    suit = EmulatedSuit(SERIAL, [suit_dir], charging=True)
    await suit.async_start(air)
    radio = await GatewayRadio.async_create(air)
    runtime = open_runtime(gateway_config(tmp_path / "gw"))
    try:
        agent = EdgeAgent(
            runtime, BleBackends(radio.scanner_backend, radio.client_backend)
        )
        report = await agent.async_cycle()
        states = {r.original_name or r.log_id: r.state for r in runtime.buffer.logs()}
    finally:
        runtime.close()
        await radio.async_close()
        await suit.async_stop()

    assert len(report.quarantined) == 1
    (reason,) = report.quarantined.values()
    assert "crc" in reason.lower() and "byte" in reason
    assert sorted(states.values()) == [LogState.PURGED, LogState.QUARANTINED]
    # Only the good log was released; the corrupt one stays on the suit.
    assert len(suit.erased_log_ids) == 1
