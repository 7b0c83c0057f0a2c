"""Build small suit logs for processing tests, sample by sample if need be.

``RestLog`` describes a suit lying still (1 g up, a little noise) at a given
rate; tests alter its arrays (duplicate, swap, drop, saturate, add a shock)
and write it with ``write_log``, which frames blocks exactly as given so a
test can also repeat or reorder whole blocks.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt

from firmware_bridge.logformat import (
    GNSS_DTYPE,
    BlockType,
    Channel,
    LogHeader,
    LogWriter,
    imu_dtype,
    physical_to_raw,
)

__all__ = [
    "ACC_FS_G",
    "GYR_FS_DPS",
    "MAG_FS_UT",
    "RestLog",
    "gnss_records",
    "write_log",
]

ACC_FS_G = 16
GYR_FS_DPS = 2000
MAG_FS_UT = 1300
START_UTC_US = 1_750_000_000_000_000


@dataclass
class RestLog:
    """A still suit: ``n`` samples at ``rate_hz`` as raw records."""

    n: int
    rate_hz: float = 1000.0
    counter_start_us: int = 1_000_000
    start_utc_us: int | None = START_UTC_US
    with_mag: bool = True
    seed: int = 1
    log_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    records: npt.NDArray[np.void] = field(init=False)

    def __post_init__(self) -> None:
        rng = np.random.default_rng(self.seed)
        self.records = np.zeros(self.n, dtype=imu_dtype(self.channels))
        offsets = np.rint(np.arange(self.n) * 1e6 / self.rate_hz).astype(np.int64)
        self.records["t_us"] = (self.counter_start_us + offsets) % (1 << 32)
        acc = rng.normal(0.0, 0.01, (self.n, 3))
        acc[:, 2] += 1.0
        self.records["acc"] = physical_to_raw(acc, ACC_FS_G)
        self.records["gyr"] = physical_to_raw(
            rng.normal(0.0, 0.2, (self.n, 3)), GYR_FS_DPS
        )
        if self.with_mag:
            mag = np.array([20.0, 1.0, -40.0]) + rng.normal(0.0, 0.3, (self.n, 3))
            self.records["mag"] = physical_to_raw(mag, MAG_FS_UT)

    @property
    def channels(self) -> Channel:
        """Return the channels of the log."""
        base = Channel.ACCEL | Channel.GYRO
        return base | Channel.MAG if self.with_mag else base

    def header(self) -> LogHeader:
        """Return the log header."""
        return LogHeader(
            suit_serial="SUIT-TEST",
            firmware_version="TEST-1",
            log_id=self.log_id,
            start_utc_us=self.start_utc_us,
            counter_start_us=self.counter_start_us,
            sample_rate_hz=self.rate_hz,
            accel_full_scale_g=ACC_FS_G,
            gyro_full_scale_dps=GYR_FS_DPS,
            mag_full_scale_ut=MAG_FS_UT if self.with_mag else None,
            channels=self.channels,
        )

    def shock(self, at_s: float, peak_g: float, width_s: float = 0.02) -> None:
        """Add a half-sine shock on x (a crash-like impact)."""
        first = int(at_s * self.rate_hz)
        count = max(1, int(width_s * self.rate_hz))
        pulse = peak_g * np.sin(np.pi * (np.arange(count) + 0.5) / count)
        acc_g = self.records["acc"][first : first + count] * (ACC_FS_G / 32768)
        acc_g[:, 0] += pulse
        # The sensor clips the sum at its full scale, as a real one does.
        self.records["acc"][first : first + count] = physical_to_raw(acc_g, ACC_FS_G)

    def time_s(self, index: int) -> float:
        """Return the nominal time of sample ``index`` since the first sample."""
        return index / self.rate_hz


def gnss_records(
    t_us: npt.ArrayLike,
    lat_deg: npt.ArrayLike,
    lon_deg: npt.ArrayLike,
    speed_mps: npt.ArrayLike,
) -> npt.NDArray[np.void]:
    """Return GNSS records (3D fix) for the given counter times and values."""
    t = np.atleast_1d(np.asarray(t_us))
    out = np.zeros(len(t), dtype=GNSS_DTYPE)
    out["t_us"] = t
    out["lat_e7"] = np.rint(np.asarray(lat_deg) * 1e7)
    out["lon_e7"] = np.rint(np.asarray(lon_deg) * 1e7)
    out["speed_mm_s"] = np.rint(np.asarray(speed_mps) * 1e3)
    out["fix"] = 3
    out["satellites"] = 10
    return out


def write_log(
    path: Path,
    log: RestLog,
    blocks: list[npt.NDArray[np.void]] | None = None,
    samples_per_block: int = 1024,
    gnss: list[tuple[int, npt.NDArray[np.void]]] | None = None,
) -> Path:
    """Write ``log`` (or the given IMU ``blocks`` in that order) to ``path``.

    ``gnss`` is a list of (IMU block number after which to write, records).
    """
    if blocks is None:
        blocks = [
            log.records[i : i + samples_per_block]
            for i in range(0, log.n, samples_per_block)
        ]
    after = {}
    for number, records in gnss or []:
        after.setdefault(number, []).append(records)
    with open(path, "wb") as stream:
        writer = LogWriter(stream, log.header())
        for number, block in enumerate(blocks):
            writer.write_block(BlockType.IMU, block)
            for records in after.get(number, []):
                writer.write_block(BlockType.GNSS, records)
        writer.close()
    return path
