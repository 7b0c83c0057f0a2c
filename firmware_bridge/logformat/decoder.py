"""Streaming, vectorised decoder for suit log format v1.

The decoder reads one block at a time and turns each block's payload into a
NumPy structured array with a single ``np.frombuffer`` call: there is no Python
loop per sample, and memory stays at one block however long the log is.

Every check names the source, byte offset and field (see ``errors``). Unknown
block types with a valid CRC are skipped, so a v1 reader tolerates blocks that
later firmware adds without bumping the format version.
"""

from __future__ import annotations

import logging
import struct
import uuid
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
import numpy.typing as npt

from .errors import (
    AbsurdLengthError,
    BadMagicError,
    CrcMismatchError,
    TruncatedLogError,
    UnsupportedVersionError,
)
from .records import (
    BLOCK_HEADER,
    BLOCK_MAGIC,
    CRC_SIZE,
    EVENT_DTYPE,
    FILE_MAGIC,
    FORMAT_VERSION,
    GNSS_DTYPE,
    HEADER,
    HEADER_FLAG_CLOCK_VALID,
    MAX_BLOCK_PAYLOAD_BYTES,
    BlockType,
    Channel,
    LogHeader,
    imu_dtype,
)

__all__ = ["Block", "DecodedLog", "LogReader", "read_log"]

_LOGGER = logging.getLogger(__name__)

# Sample rates outside this range are not something the suit can produce; a
# header claiming one is corrupt rather than exotic.
_SAMPLE_RATE_RANGE_HZ = (1.0, 10_000.0)
# A suit clock set to before 2000 or after 2100 is a corrupt header, not a
# ride: refuse it here rather than let a date library fail downstream.
_START_UTC_RANGE_US = (946_684_800_000_000, 4_102_444_800_000_000)
_ACCEL_SCALES_G = frozenset({2, 4, 8, 16, 32})
_GYRO_SCALES_DPS = frozenset({125, 250, 500, 1000, 2000, 4000})


@dataclass(frozen=True)
class Block:
    """One decoded block: its type, sequence number, file offset and records."""

    kind: BlockType
    sequence: int
    offset: int
    records: npt.NDArray[np.void]


@dataclass(frozen=True)
class DecodedLog:
    """A whole log in memory (for small logs and tests)."""

    header: LogHeader
    imu: npt.NDArray[np.void]
    events: npt.NDArray[np.void]
    gnss: npt.NDArray[np.void]


def _read_exact(
    stream: BinaryIO, size: int, source: str, offset: int, field: str
) -> bytes:
    data = stream.read(size)
    if len(data) != size:
        raise TruncatedLogError(
            source, offset, field, f"expected {size} bytes, found {len(data)}"
        )
    return data


def _parse_header(raw: bytes, source: str) -> LogHeader:
    (
        magic,
        version,
        header_len,
        serial,
        firmware,
        log_id,
        start_utc_us,
        counter_start_us,
        sample_rate_mhz,
        accel_fs_g,
        gyro_fs_dps,
        mag_fs_ut,
        channels,
        flags,
        _reserved,
        crc,
    ) = HEADER.unpack(raw)
    if magic != FILE_MAGIC:
        raise BadMagicError(
            source, 0, "magic", f"expected {FILE_MAGIC!r}, found {magic!r}"
        )
    if version != FORMAT_VERSION:
        raise UnsupportedVersionError(
            source, 8, "format_version", f"expected {FORMAT_VERSION}, found {version}"
        )
    if header_len != HEADER.size:
        raise AbsurdLengthError(
            source, 10, "header_len", f"expected {HEADER.size}, found {header_len}"
        )
    computed = zlib.crc32(raw[: HEADER.size - CRC_SIZE])
    if computed != crc:
        raise CrcMismatchError(
            source,
            HEADER.size - CRC_SIZE,
            "header_crc32",
            f"expected {computed:#010x}, found {crc:#010x}",
        )
    rate_hz = sample_rate_mhz / 1000.0
    if not _SAMPLE_RATE_RANGE_HZ[0] <= rate_hz <= _SAMPLE_RATE_RANGE_HZ[1]:
        raise AbsurdLengthError(
            source,
            72,
            "sample_rate_mhz",
            f"expected {_SAMPLE_RATE_RANGE_HZ} Hz, found {rate_hz} Hz",
        )
    if accel_fs_g not in _ACCEL_SCALES_G:
        raise AbsurdLengthError(
            source,
            76,
            "accel_full_scale_g",
            f"expected one of {sorted(_ACCEL_SCALES_G)}, found {accel_fs_g}",
        )
    if gyro_fs_dps not in _GYRO_SCALES_DPS:
        raise AbsurdLengthError(
            source,
            78,
            "gyro_full_scale_dps",
            f"expected one of {sorted(_GYRO_SCALES_DPS)}, found {gyro_fs_dps}",
        )
    clock_valid = bool(flags & HEADER_FLAG_CLOCK_VALID)
    if clock_valid and not (
        _START_UTC_RANGE_US[0] <= start_utc_us <= _START_UTC_RANGE_US[1]
    ):
        raise AbsurdLengthError(
            source,
            60,
            "start_utc_us",
            f"expected a time in 2000-2100 UTC, found {start_utc_us} us "
            "since the Unix epoch",
        )
    chans = Channel(channels & 0x7)
    if Channel.ACCEL not in chans or Channel.GYRO not in chans:
        raise AbsurdLengthError(
            source, 82, "channels", f"accel and gyro required, found {channels:#06x}"
        )
    if (Channel.MAG in chans) != (mag_fs_ut > 0):
        raise AbsurdLengthError(
            source,
            80,
            "mag_full_scale_ut",
            f"magnetometer channel flag and full scale disagree ({mag_fs_ut} uT)",
        )
    try:
        serial_text = serial.rstrip(b"\0").decode("ascii")
        firmware_text = firmware.rstrip(b"\0").decode("ascii")
    except UnicodeDecodeError as exc:
        raise BadMagicError(
            source, 12, "suit_serial/firmware_version", f"not ASCII: {exc}"
        ) from exc
    return LogHeader(
        suit_serial=serial_text,
        firmware_version=firmware_text,
        log_id=uuid.UUID(bytes=log_id).hex,
        start_utc_us=start_utc_us if clock_valid else None,
        counter_start_us=counter_start_us,
        sample_rate_hz=rate_hz,
        accel_full_scale_g=accel_fs_g,
        gyro_full_scale_dps=gyro_fs_dps,
        mag_full_scale_ut=mag_fs_ut or None,
        channels=chans,
    )


class LogReader:
    """Read a suit log block by block from a binary stream.

    Usage::

        with open(path, "rb") as f:
            reader = LogReader(f, source=str(path))
            for block in reader.blocks():
                ...
    """

    def __init__(self, stream: BinaryIO, source: str = "<stream>") -> None:
        self._stream = stream
        self.source = source
        raw = _read_exact(stream, HEADER.size, source, 0, "header")
        self.header = _parse_header(raw, source)
        self._dtypes = {
            BlockType.IMU: imu_dtype(self.header.channels),
            BlockType.EVENT: EVENT_DTYPE,
            BlockType.GNSS: GNSS_DTYPE,
        }
        self.offset = HEADER.size
        self.skipped_blocks = 0

    def blocks(self) -> Iterator[Block]:
        """Yield each block in file order, validating framing and CRC."""
        expected_sequence = 0
        while True:
            start = self.offset
            head = self._stream.read(BLOCK_HEADER.size)
            if not head:
                return
            if len(head) != BLOCK_HEADER.size:
                raise TruncatedLogError(
                    self.source,
                    start,
                    "block_header",
                    f"expected {BLOCK_HEADER.size} bytes, found {len(head)}",
                )
            magic, kind, _flags, sequence, count, payload_len = BLOCK_HEADER.unpack(
                head
            )
            if magic != BLOCK_MAGIC:
                raise BadMagicError(
                    self.source,
                    start,
                    "block_magic",
                    f"expected {BLOCK_MAGIC!r}, found {magic!r}",
                )
            if payload_len > MAX_BLOCK_PAYLOAD_BYTES:
                raise AbsurdLengthError(
                    self.source,
                    start + 12,
                    "payload_len",
                    f"expected at most {MAX_BLOCK_PAYLOAD_BYTES}, found {payload_len}",
                )
            body = _read_exact(
                self._stream,
                payload_len + CRC_SIZE,
                self.source,
                start + BLOCK_HEADER.size,
                "block_payload",
            )
            (crc,) = struct.unpack_from("<I", body, payload_len)
            computed = zlib.crc32(body[:payload_len], zlib.crc32(head))
            if computed != crc:
                raise CrcMismatchError(
                    self.source,
                    start + BLOCK_HEADER.size + payload_len,
                    "block_crc32",
                    f"block {sequence}: expected {computed:#010x}, found {crc:#010x}",
                )
            self.offset = start + BLOCK_HEADER.size + payload_len + CRC_SIZE
            if sequence != expected_sequence:
                _LOGGER.warning(
                    "%s: block sequence jumps from %d to %d at byte %d",
                    self.source,
                    expected_sequence,
                    sequence,
                    start,
                )
            expected_sequence = sequence + 1

            try:
                block_type = BlockType(kind)
            except ValueError:
                self.skipped_blocks += 1
                _LOGGER.debug("%s: skipping unknown block type %d", self.source, kind)
                continue
            dtype = self._dtypes[block_type]
            if count * dtype.itemsize != payload_len:
                raise AbsurdLengthError(
                    self.source,
                    start + 8,
                    "record_count",
                    f"{count} records of {dtype.itemsize} bytes need "
                    f"{count * dtype.itemsize} bytes, payload has {payload_len}",
                )
            records = np.frombuffer(body, dtype=dtype, count=count)
            yield Block(block_type, sequence, start, records)


def read_log(path: str | Path) -> DecodedLog:
    """Decode a whole log into memory (use ``LogReader`` for big logs)."""
    parts: dict[BlockType, list[npt.NDArray[np.void]]] = {k: [] for k in BlockType}
    with open(path, "rb") as stream:
        reader = LogReader(stream, source=str(path))
        for block in reader.blocks():
            parts[block.kind].append(block.records)
        dtypes = reader._dtypes

    def join(kind: BlockType) -> npt.NDArray[np.void]:
        if not parts[kind]:
            return np.empty(0, dtype=dtypes[kind])
        return np.concatenate(parts[kind])

    return DecodedLog(
        reader.header, join(BlockType.IMU), join(BlockType.EVENT), join(BlockType.GNSS)
    )
