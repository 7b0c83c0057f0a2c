"""Suit log format v1: constants, header and record layouts.

The byte-level description lives in ``docs/log-format.md``; this module is its
executable form. All integers are little-endian. Samples are stored as raw
signed 16-bit sensor counts; the header carries the full scale of each sensor,
so ``physical = raw * full_scale / 32768``.
"""

from __future__ import annotations

import struct
import uuid
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import IntEnum, IntFlag

import numpy as np
import numpy.typing as npt

__all__ = [
    "BLOCK_HEADER",
    "BLOCK_MAGIC",
    "CRC_SIZE",
    "EVENT_DTYPE",
    "FILE_MAGIC",
    "FORMAT_VERSION",
    "GNSS_DTYPE",
    "HEADER",
    "MAX_BLOCK_PAYLOAD_BYTES",
    "RAW_FULL_SCALE_COUNTS",
    "BlockType",
    "Channel",
    "EventKind",
    "LogHeader",
    "imu_dtype",
    "physical_to_raw",
    "raw_to_physical",
]

FILE_MAGIC = b"SUITLOG\x1a"
FORMAT_VERSION = 1
BLOCK_MAGIC = b"BK"

# magic, version, header_len, serial, firmware, log_id, start_utc_us,
# counter_start_us, sample_rate_mhz, accel_fs_g, gyro_fs_dps, mag_fs_ut,
# channels, flags, reserved, crc32
HEADER = struct.Struct("<8sHH16s16s16sqIIHHHHH6sI")
# magic, type, flags, sequence, record count, payload length
BLOCK_HEADER = struct.Struct("<2sBBIII")
CRC_SIZE = 4

# A block holds at most a few seconds of 1 kHz samples in practice; 4 MiB is
# far above anything the firmware writes and stops a corrupt length field from
# making the decoder allocate gigabytes.
MAX_BLOCK_PAYLOAD_BYTES = 4 * 1024 * 1024

# int16 counts that map to +full scale (a raw value of -32768 or +32767 means
# the sensor was saturated).
RAW_FULL_SCALE_COUNTS = 32768

HEADER_FLAG_CLOCK_VALID = 0x0001


class Channel(IntFlag):
    """Sensor channels present in every IMU record."""

    ACCEL = 0x1
    GYRO = 0x2
    MAG = 0x4


class BlockType(IntEnum):
    """Kinds of block that follow the header."""

    IMU = 1
    EVENT = 2
    GNSS = 3


class EventKind(IntEnum):
    """Event record kinds (labels, never model inputs)."""

    AIRBAG_DEPLOYED = 1
    RIDER_BUTTON = 2


EVENT_DTYPE = np.dtype(
    [("t_us", "<u4"), ("kind", "u1"), ("value", "u1"), ("reserved", "<u2")]
)
GNSS_DTYPE = np.dtype(
    [
        ("t_us", "<u4"),
        ("lat_e7", "<i4"),
        ("lon_e7", "<i4"),
        ("alt_mm", "<i4"),
        ("speed_mm_s", "<u4"),
        ("heading_cdeg", "<u2"),
        ("fix", "u1"),
        ("satellites", "u1"),
    ]
)


def imu_dtype(channels: Channel) -> np.dtype[np.void]:
    """Return the packed record layout of an IMU sample for ``channels``."""
    fields: list[tuple[str, str] | tuple[str, str, tuple[int]]] = [("t_us", "<u4")]
    fields.append(("acc", "<i2", (3,)))
    fields.append(("gyr", "<i2", (3,)))
    if Channel.MAG in channels:
        fields.append(("mag", "<i2", (3,)))
    return np.dtype(fields)


def raw_to_physical(
    raw: npt.NDArray[np.int16], full_scale: float
) -> npt.NDArray[np.float32]:
    """Convert raw int16 counts to physical units of ``full_scale``."""
    return raw.astype(np.float32) * np.float32(full_scale / RAW_FULL_SCALE_COUNTS)


def physical_to_raw(values: npt.ArrayLike, full_scale: float) -> npt.NDArray[np.int16]:
    """Convert physical values to int16 counts, clipping at full scale."""
    counts = np.rint(
        np.asarray(values, dtype=np.float64) * (RAW_FULL_SCALE_COUNTS / full_scale)
    )
    return np.clip(counts, -32768, 32767).astype(np.int16)


def _pad(text: str, size: int, field: str) -> bytes:
    data = text.encode("ascii")
    if len(data) > size:
        raise ValueError(f"{field} '{text}' is longer than {size} bytes")
    return data.ljust(size, b"\0")


@dataclass(frozen=True)
class LogHeader:
    """What the suit knows about a log before its first sample.

    ``start_utc_us`` is the wall-clock time (microseconds since the Unix epoch)
    at which the sample counter read ``counter_start_us``; it is ``None`` when
    the suit's clock was never set, in which case timestamps are only relative.
    """

    suit_serial: str
    firmware_version: str
    log_id: str
    start_utc_us: int | None
    counter_start_us: int
    sample_rate_hz: float
    accel_full_scale_g: int
    gyro_full_scale_dps: int
    mag_full_scale_ut: int | None
    channels: Channel

    @property
    def start_utc(self) -> datetime | None:
        """Return the wall-clock start, or None when the suit clock was unset."""
        if self.start_utc_us is None:
            return None
        return datetime.fromtimestamp(self.start_utc_us / 1e6, tz=UTC)

    @property
    def has_mag(self) -> bool:
        """Return True when IMU records carry a magnetometer triple."""
        return Channel.MAG in self.channels

    def pack(self) -> bytes:
        """Serialise the header, CRC included."""
        flags = HEADER_FLAG_CLOCK_VALID if self.start_utc_us is not None else 0
        body = HEADER.pack(
            FILE_MAGIC,
            FORMAT_VERSION,
            HEADER.size,
            _pad(self.suit_serial, 16, "suit_serial"),
            _pad(self.firmware_version, 16, "firmware_version"),
            uuid.UUID(hex=self.log_id).bytes,
            self.start_utc_us or 0,
            self.counter_start_us,
            round(self.sample_rate_hz * 1000),
            self.accel_full_scale_g,
            self.gyro_full_scale_dps,
            self.mag_full_scale_ut or 0,
            int(self.channels),
            flags,
            b"\0" * 6,
            0,
        )
        crc = zlib.crc32(body[: HEADER.size - CRC_SIZE])
        return body[: HEADER.size - CRC_SIZE] + struct.pack("<I", crc)
