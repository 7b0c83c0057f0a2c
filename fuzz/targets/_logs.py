"""Build small, valid suit logs with the project's ``LogWriter`` (seed inputs).

Also ``repair_crcs``: libFuzzer rarely guesses a CRC-32, so most mutants stop
at the first checksum. Harnesses decode each input as given and, when it
differs, once more with every CRC recomputed along the framing the bytes
declare, which lets mutations reach the checks behind the checksums.
"""

from __future__ import annotations

import io
import struct
import uuid
import zlib

import numpy as np

from firmware_bridge.logformat import (
    GNSS_DTYPE,
    BlockType,
    Channel,
    EventKind,
    LogHeader,
    LogWriter,
)
from firmware_bridge.logformat.records import BLOCK_HEADER, CRC_SIZE, HEADER

__all__ = ["LOG_DICTIONARY", "build_log", "gnss_only_log", "log_seeds", "repair_crcs"]

_U32 = struct.Struct("<I")
_PAYLOAD_LEN_AT = 12  # offset of payload_len inside a block header
_COUNTER_MODULUS = 1 << 32


def _header(
    with_mag: bool, rate_hz: float, counter_start_us: int, clock_valid: bool
) -> LogHeader:
    channels = Channel.ACCEL | Channel.GYRO | (Channel.MAG if with_mag else 0)
    return LogHeader(
        suit_serial="SUIT-FUZZ-0001",
        firmware_version="fw-1.4.2",
        log_id=uuid.UUID(int=0xF022).hex,
        start_utc_us=1_750_000_000_000_000 if clock_valid else None,
        counter_start_us=counter_start_us,
        sample_rate_hz=rate_hz,
        accel_full_scale_g=16,
        gyro_full_scale_dps=2000,
        mag_full_scale_ut=1300 if with_mag else None,
        channels=Channel(channels),
    )


def build_log(
    samples: int,
    *,
    with_mag: bool = False,
    rate_hz: float = 1000.0,
    samples_per_block: int = 16,
    counter_start_us: int = 1_000,
    clock_valid: bool = True,
    events: int = 0,
    gnss_fixes: int = 0,
    unknown_block: bool = False,
    seed: int = 0,
) -> bytes:
    """Return a valid v1 log of ``samples`` IMU samples and some side records."""
    rng = np.random.default_rng(seed)
    stream = io.BytesIO()
    header = _header(with_mag, rate_hz, counter_start_us, clock_valid)
    period_us = round(1e6 / rate_hz)
    t_us = (counter_start_us + np.arange(samples, dtype=np.int64) * period_us) % (
        _COUNTER_MODULUS
    )
    acc = rng.integers(-32768, 32768, (samples, 3)).astype(np.int16)
    gyr = rng.integers(-32768, 32768, (samples, 3)).astype(np.int16)
    mag = rng.integers(-32768, 32768, (samples, 3)).astype(np.int16)
    with LogWriter(stream, header, samples_per_block=samples_per_block) as writer:
        half = samples // 2
        writer.write_imu(t_us[:half], acc[:half], gyr[:half], mag[:half])
        if events and half:
            writer.write_events(
                t_us[:half][-events:],
                np.full(min(events, half), EventKind.RIDER_BUTTON),
            )
        if gnss_fixes and half:
            fixes = np.zeros(min(gnss_fixes, half), dtype=GNSS_DTYPE)
            fixes["t_us"] = t_us[:half][-len(fixes) :]
            fixes["lat_e7"] = 455_000_000 + np.arange(len(fixes)) * 100
            fixes["lon_e7"] = 91_000_000 + np.arange(len(fixes)) * 100
            fixes["speed_mm_s"] = 12_000
            fixes["heading_cdeg"] = 9_000
            fixes["fix"] = 3
            fixes["satellites"] = 9
            writer.write_gnss(fixes)
        if unknown_block:
            writer.write_block(7, np.zeros(2, dtype=GNSS_DTYPE))
        writer.write_imu(t_us[half:], acc[half:], gyr[half:], mag[half:])
    return stream.getvalue()


def gnss_only_log() -> bytes:
    """Return a valid log holding GNSS fixes and no IMU block at all."""
    stream = io.BytesIO()
    with LogWriter(stream, _header(False, 1000.0, 1_000, True)) as writer:
        fixes = np.zeros(3, dtype=GNSS_DTYPE)
        fixes["t_us"] = [5_000, 6_000, 7_000]
        fixes["fix"] = 3
        writer.write_block(BlockType.GNSS, fixes)
    return stream.getvalue()


def log_seeds() -> dict[str, bytes]:
    """Return a handful of small valid logs covering every block kind."""
    return {
        "header-only": build_log(0),
        "imu-8": build_log(8, samples_per_block=4),
        "imu-mag-40": build_log(40, with_mag=True, seed=1),
        "side-records": build_log(64, events=2, gnss_fixes=3, seed=2),
        "unknown-block": build_log(24, unknown_block=True, seed=3),
        "gnss-only": gnss_only_log(),
        "no-clock-100hz": build_log(
            48, rate_hz=100.0, clock_valid=False, gnss_fixes=2, seed=4
        ),
        "counter-wrap": build_log(
            96,
            counter_start_us=_COUNTER_MODULUS - 40_000,
            samples_per_block=32,
            gnss_fixes=1,
            seed=5,
        ),
    }


def repair_crcs(data: bytes) -> bytes:
    """Return ``data`` with the header and every framed block CRC recomputed.

    Blocks are walked by their own ``payload_len``; the walk stops at the
    first block that does not fit in the data (the decoder reports it).
    """
    fixed = bytearray(data)
    if len(fixed) < HEADER.size:
        return data
    crc_at = HEADER.size - CRC_SIZE
    _U32.pack_into(fixed, crc_at, zlib.crc32(fixed[:crc_at]))
    at = HEADER.size
    while at + BLOCK_HEADER.size <= len(fixed):
        (payload_len,) = _U32.unpack_from(fixed, at + _PAYLOAD_LEN_AT)
        crc_at = at + BLOCK_HEADER.size + payload_len
        if crc_at + CRC_SIZE > len(fixed):
            break
        _U32.pack_into(fixed, crc_at, zlib.crc32(fixed[at:crc_at]))
        at = crc_at + CRC_SIZE
    return bytes(fixed)


# Tokens worth splicing in: magics, the header length, lengths and counters
# at their bounds.
LOG_DICTIONARY: tuple[bytes, ...] = (
    b"SUITLOG\x1a",
    b"BK",
    struct.pack("<H", HEADER.size),
    struct.pack("<H", 1),
    struct.pack("<I", 4 * 1024 * 1024),
    struct.pack("<I", 4 * 1024 * 1024 + 1),
    bytes([int(BlockType.IMU)]),
    bytes([int(BlockType.EVENT)]),
    bytes([int(BlockType.GNSS)]),
    struct.pack("<I", 1_000_000),
    struct.pack("<I", 0x7FFFFFFF),
    struct.pack("<I", 0xFFFFFFFF),
    # Extremes of the header's one signed 64-bit field (start_utc_us).
    struct.pack("<q", 2**62),
    struct.pack("<q", -(2**62)),
    struct.pack("<q", 2**63 - 1),
    struct.pack("<q", -(2**63)),
)
