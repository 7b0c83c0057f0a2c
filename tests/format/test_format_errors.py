"""Damaged logs: each error names its type, the file and the byte offset."""

from __future__ import annotations

import struct
from collections.abc import Callable
from pathlib import Path

import pytest
from format_helpers import (
    build_log,
    first_block_of,
    fix_block_crc,
    fix_header_crc,
)

from firmware_bridge.logformat import (
    AbsurdLengthError,
    BadMagicError,
    BlockType,
    CrcMismatchError,
    LogFormatError,
    TruncatedLogError,
    UnsupportedVersionError,
    read_log,
)


@pytest.fixture
def good() -> bytes:
    return build_log(n=300).data


def _expect(
    tmp_path: Path,
    data: bytes | bytearray,
    error: type[LogFormatError],
    offset: int,
    field: str,
) -> LogFormatError:
    path = tmp_path / "damaged.slog"
    path.write_bytes(bytes(data))
    with pytest.raises(error) as info:
        read_log(path)
    exc = info.value
    assert type(exc) is error
    message = str(exc)
    assert str(path) in message
    assert f"at byte {offset}," in message
    assert f"'{field}'" in message
    assert (exc.source, exc.offset, exc.field) == (str(path), offset, field)
    return exc


def test_truncated_header(tmp_path: Path, good: bytes) -> None:
    exc = _expect(tmp_path, good[:50], TruncatedLogError, 0, "header")
    assert "expected 96 bytes, found 50" in str(exc)


def test_truncated_inside_block_header(tmp_path: Path, good: bytes) -> None:
    offset = first_block_of(good, BlockType.IMU)[0]
    _expect(tmp_path, good[: offset + 7], TruncatedLogError, offset, "block_header")


def test_truncated_mid_block_payload(tmp_path: Path, good: bytes) -> None:
    offset, _, _, length = first_block_of(good, BlockType.IMU)
    cut = good[: offset + 16 + length // 2]
    exc = _expect(tmp_path, cut, TruncatedLogError, offset + 16, "block_payload")
    assert f"expected {length + 4} bytes, found {length // 2}" in str(exc)


def test_truncated_inside_block_crc(tmp_path: Path, good: bytes) -> None:
    offset, _, _, length = first_block_of(good, BlockType.IMU)
    cut = good[: offset + 16 + length + 2]
    _expect(tmp_path, cut, TruncatedLogError, offset + 16, "block_payload")


def test_wrong_file_magic(tmp_path: Path, good: bytes) -> None:
    data = bytearray(good)
    data[0:8] = b"NOTALOG!"
    exc = _expect(tmp_path, data, BadMagicError, 0, "magic")
    assert "NOTALOG!" in str(exc)


def test_unknown_version(tmp_path: Path, good: bytes) -> None:
    data = bytearray(good)
    struct.pack_into("<H", data, 8, 7)
    fix_header_crc(data)
    exc = _expect(tmp_path, data, UnsupportedVersionError, 8, "format_version")
    assert "expected 1, found 7" in str(exc)


def test_header_crc_mismatch(tmp_path: Path, good: bytes) -> None:
    data = bytearray(good)
    data[12] ^= 0x01  # first byte of the serial
    _expect(tmp_path, data, CrcMismatchError, 92, "header_crc32")


def test_block_crc_mismatch(tmp_path: Path, good: bytes) -> None:
    offset, _, _, length = first_block_of(good, BlockType.GNSS)
    data = bytearray(good)
    data[offset + 16 + 5] ^= 0x40
    exc = _expect(tmp_path, data, CrcMismatchError, offset + 16 + length, "block_crc32")
    assert "expected 0x" in str(exc) and "found 0x" in str(exc)


def test_absurd_payload_length(tmp_path: Path, good: bytes) -> None:
    offset = first_block_of(good, BlockType.IMU)[0]
    data = bytearray(good)
    struct.pack_into("<I", data, offset + 12, 0xFFFF_FFF0)
    exc = _expect(tmp_path, data, AbsurdLengthError, offset + 12, "payload_len")
    assert str(0xFFFF_FFF0) in str(exc)


def test_record_count_disagrees_with_payload(tmp_path: Path, good: bytes) -> None:
    offset, _, count, length = first_block_of(good, BlockType.IMU)
    data = bytearray(good)
    struct.pack_into("<I", data, offset + 8, count + 1)
    fix_block_crc(data, offset)
    exc = _expect(tmp_path, data, AbsurdLengthError, offset + 8, "record_count")
    assert f"{count + 1} records of 22 bytes" in str(exc)
    assert f"payload has {length}" in str(exc)


def test_bad_block_sync_word(tmp_path: Path, good: bytes) -> None:
    offset = first_block_of(good, BlockType.EVENT)[0]
    data = bytearray(good)
    data[offset : offset + 2] = b"XX"
    _expect(tmp_path, data, BadMagicError, offset, "block_magic")


@pytest.mark.parametrize(
    ("offset", "fmt", "value", "field"),
    [
        (10, "<H", 128, "header_len"),
        (72, "<I", 20_000_000_000 // 1000, "sample_rate_mhz"),
        (76, "<H", 3, "accel_full_scale_g"),
        (78, "<H", 300, "gyro_full_scale_dps"),
        (82, "<H", 0x5, "channels"),
        (80, "<H", 0, "mag_full_scale_ut"),
    ],
)
def test_impossible_header_fields(
    tmp_path: Path, good: bytes, offset: int, fmt: str, value: int, field: str
) -> None:
    data = bytearray(good)
    struct.pack_into(fmt, data, offset, value)
    fix_header_crc(data)
    _expect(tmp_path, data, AbsurdLengthError, offset, field)


def test_every_error_is_a_value_error() -> None:
    errors: list[Callable[..., LogFormatError]] = [
        TruncatedLogError,
        BadMagicError,
        UnsupportedVersionError,
        CrcMismatchError,
        AbsurdLengthError,
    ]
    for error in errors:
        assert isinstance(error("f", 1, "x", "y"), ValueError)
