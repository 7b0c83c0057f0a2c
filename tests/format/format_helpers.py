"""Build small suit logs in memory for the format tests."""

from __future__ import annotations

import io
import struct
import uuid
import zlib
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from firmware_bridge.logformat import (
    GNSS_DTYPE,
    BlockType,
    Channel,
    EventKind,
    LogHeader,
    LogWriter,
)
from firmware_bridge.logformat.records import BLOCK_HEADER, CRC_SIZE, HEADER

SAMPLES_PER_BLOCK = 64


@dataclass
class BuiltLog:
    """A log's bytes and what was written into it."""

    data: bytes
    header: LogHeader
    t_us: npt.NDArray[np.uint32]
    acc: npt.NDArray[np.int16]
    gyr: npt.NDArray[np.int16]
    mag: npt.NDArray[np.int16] | None
    events: list[tuple[int, int, int]]
    gnss: npt.NDArray[np.void]


def make_header(with_mag: bool = True, counter_start_us: int = 1_000) -> LogHeader:
    channels = Channel.ACCEL | Channel.GYRO | (Channel.MAG if with_mag else 0)
    return LogHeader(
        suit_serial="SUIT-TEST",
        firmware_version="FW-1.2.3",
        log_id=uuid.UUID(int=0x1234).hex,
        start_utc_us=1_749_886_200_000_000,
        counter_start_us=counter_start_us,
        sample_rate_hz=1000.0,
        accel_full_scale_g=16,
        gyro_full_scale_dps=2000,
        mag_full_scale_ut=1300 if with_mag else None,
        channels=Channel(channels),
    )


def build_log(
    n: int = 300,
    with_mag: bool = True,
    counter_start_us: int = 1_000,
    seed: int = 0,
    unknown_block: bool = False,
) -> BuiltLog:
    """Write ``n`` 1 kHz samples, one event and a few GNSS fixes."""
    rng = np.random.default_rng(seed)
    header = make_header(with_mag, counter_start_us)
    t_us = (
        (counter_start_us + np.arange(n, dtype=np.int64) * 1000) % (1 << 32)
    ).astype(np.uint32)
    acc = rng.integers(-32768, 32768, (n, 3)).astype(np.int16)
    gyr = rng.integers(-32768, 32768, (n, 3)).astype(np.int16)
    mag = rng.integers(-32768, 32768, (n, 3)).astype(np.int16) if with_mag else None
    # One event and three fixes when the log is long enough to hold them.
    event_index, fix_index = 100, np.array([10, 110, 210])
    if n <= fix_index[-1]:
        event_index, fix_index = -1, fix_index[:0]
    events = (
        []
        if event_index < 0
        else [(int(t_us[event_index]), int(EventKind.AIRBAG_DEPLOYED), 1)]
    )
    gnss = np.zeros(len(fix_index), dtype=GNSS_DTYPE)
    gnss["t_us"] = t_us[fix_index]
    gnss["lat_e7"] = [445_000_000, 445_000_010, 445_000_020][: len(fix_index)]
    gnss["lon_e7"] = [113_400_000, 113_400_005, 113_400_010][: len(fix_index)]
    gnss["speed_mm_s"] = [12_000, 12_100, 12_200][: len(fix_index)]
    gnss["fix"] = 3
    gnss["satellites"] = 11

    stream = io.BytesIO()
    writer = LogWriter(stream, header, samples_per_block=SAMPLES_PER_BLOCK)
    step = 50
    for lo in range(0, n, step):
        hi = min(n, lo + step)
        if lo <= event_index < hi:
            t, kind, value = events[0]
            writer.write_events([t], [kind], [value])
        fixes = gnss[(fix_index >= lo) & (fix_index < hi)]
        if len(fixes):
            writer.write_gnss(fixes)
        writer.write_imu(
            t_us[lo:hi], acc[lo:hi], gyr[lo:hi], None if mag is None else mag[lo:hi]
        )
        if unknown_block and lo == 100:
            writer.write_block(99, np.frombuffer(b"future data!", dtype=np.uint8))
    writer.close()
    return BuiltLog(stream.getvalue(), header, t_us, acc, gyr, mag, events, gnss)


def block_offsets(data: bytes) -> list[tuple[int, int, int, int]]:
    """Return (offset, type, count, payload_len) of every block in ``data``."""
    out = []
    offset = HEADER.size
    while offset < len(data):
        _, kind, _, _, count, length = BLOCK_HEADER.unpack_from(data, offset)
        out.append((offset, kind, count, length))
        offset += BLOCK_HEADER.size + length + CRC_SIZE
    return out


def first_block_of(data: bytes, kind: BlockType) -> tuple[int, int, int, int]:
    """Return the first block of ``kind``."""
    return next(b for b in block_offsets(data) if b[1] == kind)


def fix_header_crc(data: bytearray) -> None:
    """Recompute the header CRC after an edit."""
    struct.pack_into("<I", data, 92, zlib.crc32(bytes(data[:92])))


def fix_block_crc(data: bytearray, offset: int) -> None:
    """Recompute one block's CRC after an edit of its header or payload."""
    length = struct.unpack_from("<I", data, offset + 12)[0]
    end = offset + BLOCK_HEADER.size + length
    struct.pack_into("<I", data, end, zlib.crc32(bytes(data[offset:end])))
