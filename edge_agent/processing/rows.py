"""Layout of the processed CSV and the assembly of its rows.

One row per cleaned sample at the native rate, SI units, fixed decimals (as
many as the sensor resolves, see ``decimals_for``)::

    t_s, [t_utc], acc_{x,y,z}_mps2, gyr_{x,y,z}_rads, [mag_{x,y,z}_ut],
    lean_deg, [lat_deg, lon_deg, alt_m, speed_mps], saturated

``t_s`` counts seconds from the first sample; ``t_utc`` (only when the
stream's clock is wall-clock) is UTC as ``YYYY-MM-DD hh:mm:ss.ffffff``.
``lean_deg`` is empty when the stream is too coarse for orientation. GNSS
columns (streams that can carry GNSS) hold each fix once, on the first sample
at or after the fix time, and are empty on other rows.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from firmware_bridge.logformat import RAW_FULL_SCALE_COUNTS

from .csv_out import Column
from .samples import STANDARD_GRAVITY_MPS2, GnssFixes, SampleChunk, StreamInfo

__all__ = ["RowAssembler", "csv_columns", "decimals_for"]

# Decimals when the sensor's resolution is unknown (CSV imports): finer than
# consumer IMUs resolve (a 2 g accelerometer: 0.0006 m/s², a 125 dps gyro:
# 0.00007 rad/s, a magnetometer: about 0.15 µT).
ACC_DECIMALS = 4
GYR_DECIMALS = 5
MAG_DECIMALS = 2
T_S_DECIMALS = 6
# Lean is accurate to a few degrees; a tenth shows the shape of a curve.
LEAN_DECIMALS = 1
# 1e-7 degree is 1.1 cm, the resolution of the suit's GNSS records.
LATLON_DECIMALS = 7
ALT_DECIMALS = 2
SPEED_DECIMALS = 2

_AXES = ("x", "y", "z")


def decimals_for(full_scale: float | None, unit_factor: float, default: int) -> int:
    """Return the fewest decimals that keep a sensor's raw counts exact.

    Rounding to 10**-d loses nothing when 10**-d is at most half of one count
    (``full_scale * unit_factor / 32768``); without a full scale, ``default``.
    """
    if not full_scale:
        return default
    half_count = full_scale * unit_factor / RAW_FULL_SCALE_COUNTS / 2.0
    return max(0, math.ceil(-math.log10(half_count)))


def csv_columns(info: StreamInfo) -> list[Column]:
    """Return the output columns for a stream."""
    acc = decimals_for(info.accel_full_scale_g, STANDARD_GRAVITY_MPS2, ACC_DECIMALS)
    gyr = decimals_for(info.gyro_full_scale_dps, math.pi / 180.0, GYR_DECIMALS)
    mag = decimals_for(info.mag_full_scale_ut, 1.0, MAG_DECIMALS)
    columns = [Column("t_s", T_S_DECIMALS, "scaled")]
    if info.start_utc_us is not None:
        columns.append(Column("t_utc", kind="timestamp_us"))
    columns += [Column(f"acc_{a}_mps2", acc) for a in _AXES]
    columns += [Column(f"gyr_{a}_rads", gyr) for a in _AXES]
    if info.has_mag:
        columns += [Column(f"mag_{a}_ut", mag) for a in _AXES]
    columns.append(Column("lean_deg", LEAN_DECIMALS, nullable=True))
    if info.has_gnss:
        columns += [
            Column("lat_deg", LATLON_DECIMALS, nullable=True),
            Column("lon_deg", LATLON_DECIMALS, nullable=True),
            Column("alt_m", ALT_DECIMALS, nullable=True),
            Column("speed_mps", SPEED_DECIMALS, nullable=True),
        ]
    columns.append(Column("saturated", kind="int"))
    return columns


class RowAssembler:
    """Turn cleaned samples, their lean and the GNSS track into CSV columns."""

    def __init__(self, info: StreamInfo, t0_us: int) -> None:
        self._info = info
        self._t0_us = t0_us
        self._last_row_us: int | None = None

    def rows(
        self,
        samples: SampleChunk,
        lean_deg: npt.NDArray[np.float64],
        fixes: GnssFixes,
    ) -> dict[str, npt.NDArray[np.generic]]:
        """Return the column arrays of these samples (sorted, consecutive)."""
        info = self._info
        t = samples.t_us
        out: dict[str, npt.NDArray[np.generic]] = {"t_s": t - self._t0_us}
        if info.start_utc_us is not None:
            out["t_utc"] = t + (info.start_utc_us - info.clock_origin_us)
        for i, axis in enumerate(_AXES):
            out[f"acc_{axis}_mps2"] = samples.acc_mps2[:, i]
            out[f"gyr_{axis}_rads"] = samples.gyr_rads[:, i]
            if samples.mag_ut is not None:
                out[f"mag_{axis}_ut"] = samples.mag_ut[:, i]
        out["lean_deg"] = lean_deg
        if info.has_gnss:
            out.update(self._gnss_columns(t, fixes))
        out["saturated"] = samples.saturation.astype(np.uint8)
        self._last_row_us = int(t[-1])
        return out

    def _gnss_columns(
        self, t: npt.NDArray[np.int64], fixes: GnssFixes
    ) -> dict[str, npt.NDArray[np.generic]]:
        columns = {
            name: np.full(len(t), np.nan)
            for name in ("lat_deg", "lon_deg", "alt_m", "speed_mps")
        }
        lo = 0
        if self._last_row_us is not None:
            lo = int(np.searchsorted(fixes.t_us, self._last_row_us, side="right"))
        hi = int(np.searchsorted(fixes.t_us, t[-1], side="right"))
        if hi > lo:
            here = fixes.take(np.arange(lo, hi))
            # Later fixes overwrite earlier ones that fall on the same row.
            row = np.searchsorted(t, here.t_us, side="left")
            columns["lat_deg"][row] = here.lat_deg
            columns["lon_deg"][row] = here.lon_deg
            columns["alt_m"][row] = here.alt_m
            columns["speed_mps"][row] = here.speed_mps
        return dict(columns)
