"""Bad suit logs raise processing errors naming the file and the byte."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest

from edge_agent.processing import (
    BadInputError,
    ChecksumError,
    CorruptLogError,
    ImplausibleTimeError,
    ImpossibleFieldError,
    InputReadError,
    NotASuitLogError,
    ProcessOptions,
    TruncatedInputError,
    UnsupportedLogVersionError,
    process_log,
)
from firmware_bridge.logformat import LogFormatError
from firmware_bridge.logformat.records import BLOCK_HEADER, HEADER
from tests.processing.builders import RestLog, write_log

BLOCK_BYTES = BLOCK_HEADER.size + 1024 * RestLog(n=1).records.itemsize + 4


def _log(tmp_path: Path) -> Path:
    return write_log(tmp_path / "ride.slog", RestLog(n=4096))


def _patch(path: Path, offset: int, data: bytes) -> None:
    raw = bytearray(path.read_bytes())
    raw[offset : offset + len(data)] = data
    path.write_bytes(bytes(raw))


def _expect(path: Path, out: Path, kind: type[CorruptLogError], offset: int) -> None:
    with pytest.raises(kind) as caught:
        process_log(path, "r", "s", out, None, options=ProcessOptions(fsync=False))
    error = caught.value
    assert isinstance(error, BadInputError)
    assert isinstance(error.__cause__, LogFormatError)
    assert error.source == str(path)
    assert error.offset == offset
    assert str(path) in str(error) and f"at byte {offset}" in str(error)
    # Nothing half-written is left for the caller to trip over.
    leftovers = list(out.iterdir()) if out.exists() else []
    assert leftovers == []


def test_truncated_log(tmp_path: Path) -> None:
    path = _log(tmp_path)
    size = path.stat().st_size
    path.write_bytes(path.read_bytes()[: size - 100])
    last_block = HEADER.size + 3 * BLOCK_BYTES
    _expect(path, tmp_path / "out", TruncatedInputError, last_block + BLOCK_HEADER.size)


def test_wrong_magic(tmp_path: Path) -> None:
    path = _log(tmp_path)
    _patch(path, 0, b"NOTALOG!")
    _expect(path, tmp_path / "out", NotASuitLogError, 0)


def test_unknown_version(tmp_path: Path) -> None:
    path = _log(tmp_path)
    _patch(path, 8, struct.pack("<H", 7))
    _expect(path, tmp_path / "out", UnsupportedLogVersionError, 8)


def test_crc_mismatch(tmp_path: Path) -> None:
    path = _log(tmp_path)
    block_2 = HEADER.size + 2 * BLOCK_BYTES
    raw = path.read_bytes()
    _patch(path, block_2 + 100, bytes([raw[block_2 + 100] ^ 0xFF]))
    _expect(path, tmp_path / "out", ChecksumError, block_2 + BLOCK_BYTES - 4)


def test_absurd_length(tmp_path: Path) -> None:
    path = _log(tmp_path)
    block_1 = HEADER.size + BLOCK_BYTES
    _patch(path, block_1 + 12, struct.pack("<I", 64 * 1024 * 1024))
    _expect(path, tmp_path / "out", ImpossibleFieldError, block_1 + 12)


def test_missing_file_is_not_the_inputs_fault(tmp_path: Path) -> None:
    with pytest.raises(InputReadError, match=r"nowhere\.slog"):
        process_log(tmp_path / "nowhere.slog", "r", "s", tmp_path / "out", None)


def test_damage_late_in_the_log_leaves_no_partial_csv(tmp_path: Path) -> None:
    path = write_log(tmp_path / "long.slog", RestLog(n=40 * 1024))
    block_35 = HEADER.size + 35 * BLOCK_BYTES
    raw = path.read_bytes()
    _patch(path, block_35 + 50, bytes([raw[block_35 + 50] ^ 0x01]))
    out = tmp_path / "out"
    with pytest.raises(ChecksumError):
        process_log(path, "r", "s", out, None,
                    options=ProcessOptions(chunk_s=2.0, fsync=False))  # fmt: skip
    assert list(out.iterdir()) == []


def test_time_jump_no_ride_has_is_refused(tmp_path: Path) -> None:
    log = RestLog(n=6000)
    # The counter leaps 20 minutes ahead at sample 4000 (CRCs stay valid).
    log.records["t_us"][4000:] += np.uint32(20 * 60 * 1_000_000)
    path = write_log(tmp_path / "jump.slog", log)
    out = tmp_path / "out"
    with pytest.raises(ImplausibleTimeError) as caught:
        process_log(path, "r", "s", out, None, options=ProcessOptions(fsync=False))
    message = str(caught.value)
    assert str(path) in message and "sample 4000" in message and "1200.0 s" in message
    assert list(out.iterdir()) == []
