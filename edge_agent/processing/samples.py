"""What a source hands the pipeline: stream facts and chunks of samples in SI.

A source (a suit log, a CSV export) turns its input into ``SourceChunk``\\ s:
IMU samples already in SI units (m/s², rad/s, µT) on an int64 microsecond time
line (counter wraps already unwrapped), possibly still out of order or
duplicated, plus the GNSS fixes that came with them. The cleaner sorts them.

Sources promise one thing about GNSS timing: a fix whose time is at or before
the last sample of a chunk arrives in that chunk or an earlier one, so the
pipeline knows when the fixes around a moment are complete.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

__all__ = [
    "STANDARD_GRAVITY_MPS2",
    "GnssFixes",
    "SampleChunk",
    "SourceChunk",
    "StreamInfo",
]

# ISO 80000-3 standard gravity; the contract's "g" for accelerations.
STANDARD_GRAVITY_MPS2 = 9.80665

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
B = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class StreamInfo:
    """Facts about a stream known before its first sample.

    ``start_utc_us`` is the wall-clock time (µs since the Unix epoch) at the
    stream time ``clock_origin_us``, or None when the stream's clock is not
    wall-clock (a board's uptime, a suit whose clock was never set).
    """

    source: str
    log_id: str
    kind: str
    sample_rate_hz: float
    start_utc_us: int | None = None
    clock_origin_us: int = 0
    has_mag: bool = False
    has_gnss: bool = False
    accel_full_scale_g: float | None = None
    gyro_full_scale_dps: float | None = None
    mag_full_scale_ut: float | None = None
    suit_serial: str | None = None


@dataclass
class SampleChunk:
    """IMU samples in SI units on the unwrapped microsecond time line."""

    t_us: I64
    acc_mps2: F32
    gyr_rads: F32
    mag_ut: F32 | None = None
    saturated: B | None = None

    def __post_init__(self) -> None:
        if self.saturated is None:
            self.saturated = np.zeros(len(self.t_us), dtype=np.bool_)

    def __len__(self) -> int:
        return len(self.t_us)

    @property
    def saturation(self) -> B:
        """Return the per-sample saturation flags."""
        assert self.saturated is not None
        return self.saturated

    def take(self, index: npt.NDArray[np.intp] | slice) -> SampleChunk:
        """Return the samples at ``index`` (fancy index or slice)."""
        return SampleChunk(
            self.t_us[index],
            self.acc_mps2[index],
            self.gyr_rads[index],
            None if self.mag_ut is None else self.mag_ut[index],
            self.saturation[index],
        )

    @classmethod
    def concat(cls, parts: list[SampleChunk]) -> SampleChunk:
        """Join chunks end to end (all with or all without magnetometer)."""
        if len(parts) == 1:
            return parts[0]
        mags = [p.mag_ut for p in parts if p.mag_ut is not None]
        return cls(
            np.concatenate([p.t_us for p in parts]),
            np.concatenate([p.acc_mps2 for p in parts]),
            np.concatenate([p.gyr_rads for p in parts]),
            np.concatenate(mags) if len(mags) == len(parts) else None,
            np.concatenate([p.saturation for p in parts]),
        )

    @classmethod
    def empty(cls, has_mag: bool) -> SampleChunk:
        """Return a chunk with no samples."""
        zero3 = np.empty((0, 3), dtype=np.float32)
        return cls(
            np.empty(0, dtype=np.int64), zero3, zero3, zero3 if has_mag else None
        )


@dataclass
class GnssFixes:
    """GNSS fixes; NaN marks a value the receiver or export did not give."""

    t_us: I64
    lat_deg: F64
    lon_deg: F64
    alt_m: F64
    speed_mps: F64
    course_deg: F64

    def __len__(self) -> int:
        return len(self.t_us)

    def take(self, index: npt.NDArray[np.intp] | npt.NDArray[np.bool_]) -> GnssFixes:
        """Return the fixes at ``index``."""
        return GnssFixes(
            self.t_us[index],
            self.lat_deg[index],
            self.lon_deg[index],
            self.alt_m[index],
            self.speed_mps[index],
            self.course_deg[index],
        )

    @classmethod
    def concat(cls, parts: list[GnssFixes]) -> GnssFixes:
        """Join fix arrays end to end."""
        if not parts:
            return cls.empty()
        if len(parts) == 1:
            return parts[0]
        return cls(
            np.concatenate([p.t_us for p in parts]),
            np.concatenate([p.lat_deg for p in parts]),
            np.concatenate([p.lon_deg for p in parts]),
            np.concatenate([p.alt_m for p in parts]),
            np.concatenate([p.speed_mps for p in parts]),
            np.concatenate([p.course_deg for p in parts]),
        )

    @classmethod
    def empty(cls) -> GnssFixes:
        """Return an empty set of fixes."""
        nothing = np.empty(0, dtype=np.float64)
        return cls(
            np.empty(0, dtype=np.int64), nothing, nothing, nothing, nothing, nothing
        )


@dataclass
class SourceChunk:
    """One piece of a stream as a source delivers it, with its own counts."""

    samples: SampleChunk
    fixes: GnssFixes = field(default_factory=GnssFixes.empty)
    rejected_rows: int = 0
    counter_wraps: int = 0
    # Airbag deployments read with this chunk, on the samples' time line
    # (labels for federated training, never model inputs).
    airbag_t_us: npt.NDArray[np.int64] = field(
        default_factory=lambda: np.empty(0, dtype=np.int64)
    )
