"""GNSS track: de-duplicated fixes, speed lookup, distance and course.

Fixes are kept for the whole log (a 3-hour ride at 10 Hz is 108,000 fixes, a
few megabytes). Distance is the time integral of the receiver's speed where
the receiver reports one; otherwise the haversine length of the track after a
jitter filter (a fix closer than ``JITTER_M`` to the last accepted one is not
movement). Sources hand over each fix once (the CSV import removes the
repeats that exports write on every IMU row).
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from .samples import GnssFixes

__all__ = [
    "EARTH_RADIUS_M",
    "JITTER_M",
    "MAX_FIX_GAP_S",
    "GnssTrack",
    "haversine_m",
]

# Mean Earth radius (IUGG); haversine error against the ellipsoid is < 0.5 %.
EARTH_RADIUS_M = 6_371_008.8
# Consumer receivers wander by a few metres while standing still; steps
# shorter than this are noise, not movement. At 5 m the chord lost on a 20 m
# radius bend is under 1 %.
JITTER_M = 5.0
# Receivers' speed noise is about 0.1-0.2 m/s (1 sigma); reported speeds
# below this floor are a receiver standing still, not walking (>= 1 m/s).
SPEED_FLOOR_MPS = 0.5
# Speed between two fixes further apart than this is unknown (tunnel, lost
# fix); interpolating across would invent a speed profile.
MAX_FIX_GAP_S = 2.5
# Top speed is the largest median over this many fixes (receiver speed) or
# position steps (no receiver speed): a glitch or a position jump of a
# consumer receiver spans one to three steps at 1 Hz.
SPEED_MEDIAN_FIXES = 3
POSITION_SPEED_MEDIAN_STEPS = 7
# Receivers report speed on most fixes when they report it at all; below
# this share the track's positions are the better distance source.
MIN_SPEED_SHARE = 0.9

F64 = npt.NDArray[np.float64]


def haversine_m(lat1: F64, lon1: F64, lat2: F64, lon2: F64) -> F64:
    """Return great-circle distances in metres between coordinate arrays."""
    p1, p2 = np.radians(lat1), np.radians(lat2)
    dp = p2 - p1
    dl = np.radians(lon2 - lon1)
    a = np.sin(dp / 2.0) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dl / 2.0) ** 2
    distance_m: F64 = 2.0 * EARTH_RADIUS_M * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))
    return distance_m


def _rolling_median(values: F64, width: int) -> F64:
    """Return medians of ``width`` consecutive values (fewer if too short)."""
    if len(values) <= width:
        return np.array([np.median(values)]) if len(values) else np.zeros(1)
    windows = np.lib.stride_tricks.sliding_window_view(values, width)
    return np.asarray(np.median(windows, axis=1), dtype=np.float64)


def _bearing_deg(lat1: F64, lon1: F64, lat2: F64, lon2: F64) -> F64:
    p1, p2 = np.radians(lat1), np.radians(lat2)
    dl = np.radians(lon2 - lon1)
    y = np.sin(dl) * np.cos(p2)
    x = np.cos(p1) * np.sin(p2) - np.sin(p1) * np.cos(p2) * np.cos(dl)
    bearing_deg: F64 = np.degrees(np.arctan2(y, x))
    return bearing_deg


class GnssTrack:
    """Collect fixes chunk by chunk and answer questions about the track."""

    def __init__(self) -> None:
        self._parts: list[GnssFixes] = []
        self._fixes: GnssFixes | None = None

    def add(self, fixes: GnssFixes) -> None:
        """Add fixes (any order; invalid positions are dropped)."""
        valid = np.isfinite(fixes.lat_deg) & np.isfinite(fixes.lon_deg)
        valid &= np.abs(fixes.lat_deg) <= 90.0
        valid &= np.abs(fixes.lon_deg) <= 180.0
        valid &= (fixes.lat_deg != 0.0) | (fixes.lon_deg != 0.0)
        if valid.any():
            self._parts.append(fixes.take(np.flatnonzero(valid)))
            self._fixes = None

    @property
    def fixes(self) -> GnssFixes:
        """Return the fixes sorted by time, one per time stamp."""
        if self._fixes is None:
            joined = GnssFixes.concat(self._parts)
            order = np.argsort(joined.t_us, kind="stable")
            ordered = joined.take(order)
            first = np.ones(len(ordered), dtype=np.bool_)
            first[1:] = np.diff(ordered.t_us) > 0
            self._fixes = ordered.take(np.flatnonzero(first))
            self._parts = [self._fixes]
        return self._fixes

    def __len__(self) -> int:
        return len(self.fixes)

    @property
    def has_speed(self) -> bool:
        """Return True when the receiver reported speed on most fixes."""
        fixes = self.fixes
        if len(fixes) < 2:
            return False
        share = float(np.isfinite(fixes.speed_mps).mean())
        return share >= MIN_SPEED_SHARE

    def speed_at(self, t_us: F64) -> tuple[F64, F64]:
        """Return speed (m/s) and its rate (m/s²) at times, NaN where unknown.

        Speed is interpolated between the two fixes around each time when they
        are at most ``MAX_FIX_GAP_S`` apart and both carry a speed.
        """
        fixes = self.fixes
        speed = np.full(len(t_us), np.nan)
        rate = np.full(len(t_us), np.nan)
        if len(fixes) < 2 or len(t_us) == 0:
            return speed, rate
        ft = fixes.t_us.astype(np.float64)
        after = np.searchsorted(ft, t_us, side="right")
        inside = (after > 0) & (after < len(ft))
        hi = np.minimum(after, len(ft) - 1)
        lo = np.maximum(after - 1, 0)
        span_s = (ft[hi] - ft[lo]) / 1e6
        v_lo, v_hi = fixes.speed_mps[lo], fixes.speed_mps[hi]
        ok = inside & (span_s > 0) & (span_s <= MAX_FIX_GAP_S)
        ok &= np.isfinite(v_lo) & np.isfinite(v_hi)
        frac = np.where(
            ok, (t_us - ft[lo]) / np.where(span_s > 0, span_s * 1e6, 1.0), 0
        )
        speed[ok] = (v_lo + frac * (v_hi - v_lo))[ok]
        rate[ok] = ((v_hi - v_lo) / np.where(span_s > 0, span_s, 1.0))[ok]
        return speed, rate

    def _moving(self) -> GnssFixes:
        """Return the fixes that are movement (jitter filter)."""
        fixes = self.fixes
        if len(fixes) < 2:
            return fixes
        # The filter compares with the last *accepted* fix, so it is
        # sequential; it runs over fixes (1-10 Hz), never over samples.
        lat = np.radians(fixes.lat_deg).tolist()
        lon = np.radians(fixes.lon_deg).tolist()
        keep = [0]
        last_lat, last_lon = lat[0], lon[0]
        for i in range(1, len(lat)):
            dp = lat[i] - last_lat
            dl = lon[i] - last_lon
            a = (
                math.sin(dp / 2) ** 2
                + math.cos(last_lat) * math.cos(lat[i]) * math.sin(dl / 2) ** 2
            )
            if 2.0 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(a))) >= JITTER_M:
                keep.append(i)
                last_lat, last_lon = lat[i], lon[i]
        return fixes.take(np.asarray(keep, dtype=np.intp))

    def distance_m(self, t_first_us: int, t_last_us: int) -> float | None:
        """Return the distance travelled between two sample times, or None
        without a usable track.

        With receiver speed, the speed at the first and last fix is held back
        to ``t_first_us`` and on to ``t_last_us``: a receiver needs seconds to
        its first fix while the rider is already walking to the bike.
        """
        fixes = self.fixes
        if len(fixes) < 2:
            return None
        if self.has_speed:
            ends = 0.0
            speed = fixes.speed_mps
            if np.isfinite(speed[0]) and speed[0] >= SPEED_FLOOR_MPS:
                ends += float(speed[0]) * max(0, int(fixes.t_us[0]) - t_first_us) / 1e6
            if np.isfinite(speed[-1]) and speed[-1] >= SPEED_FLOOR_MPS:
                ends += float(speed[-1]) * max(0, t_last_us - int(fixes.t_us[-1])) / 1e6
            return self._speed_integral_m() + ends
        moving = self._moving()
        if len(moving) < 2:
            return 0.0
        steps = haversine_m(
            moving.lat_deg[:-1],
            moving.lon_deg[:-1],
            moving.lat_deg[1:],
            moving.lon_deg[1:],
        )
        return float(steps.sum())

    def _speed_integral_m(self) -> float:
        fixes = self.fixes
        dt_s = np.diff(fixes.t_us) / 1e6
        # A receiver standing still reports |noise| as speed; below the floor
        # it is not movement.
        v = np.where(fixes.speed_mps < SPEED_FLOOR_MPS, 0.0, fixes.speed_mps)
        by_speed = 0.5 * (v[:-1] + v[1:]) * dt_s
        # Across an outage (or a fix without speed) the straight line between
        # the fixes on either side is the best remaining estimate.
        chord = haversine_m(
            fixes.lat_deg[:-1],
            fixes.lon_deg[:-1],
            fixes.lat_deg[1:],
            fixes.lon_deg[1:],
        )
        use_chord = (dt_s > MAX_FIX_GAP_S) | ~np.isfinite(by_speed)
        return float(np.where(use_chord, chord, by_speed).sum())

    def max_speed_mps(self) -> float | None:
        """Return the top speed, or None without a usable track.

        The receiver's speed is median-filtered over ``SPEED_MEDIAN_FIXES``
        fixes (a single-fix glitch is not a top speed); without it, step
        speeds of the moving track are median-filtered over
        ``POSITION_SPEED_MEDIAN_STEPS`` steps, which also absorbs the position
        jumps consumer receivers make when they correct their fix.
        """
        fixes = self.fixes
        if len(fixes) < 2:
            return None
        if self.has_speed:
            speed = fixes.speed_mps[np.isfinite(fixes.speed_mps)]
            return float(_rolling_median(speed, SPEED_MEDIAN_FIXES).max())
        moving = self._moving()
        if len(moving) < 2:
            return 0.0
        steps = haversine_m(
            moving.lat_deg[:-1], moving.lon_deg[:-1],
            moving.lat_deg[1:], moving.lon_deg[1:],
        )  # fmt: skip
        dt_s = np.diff(moving.t_us) / 1e6
        speed = steps[dt_s > 0] / dt_s[dt_s > 0]
        return float(_rolling_median(speed, POSITION_SPEED_MEDIAN_STEPS).max())

    def course_rate(self, rate_hz: float, t0_us: int) -> tuple[F64, F64] | None:
        """Return times (s since ``t0_us``) and course rate (deg/s, positive
        left) at ``rate_hz`` from the moving track; None when too short."""
        moving = self._moving()
        if len(moving) < 3:
            return None
        bearing = _bearing_deg(
            moving.lat_deg[:-1],
            moving.lon_deg[:-1],
            moving.lat_deg[1:],
            moving.lon_deg[1:],
        )
        heading = np.degrees(np.unwrap(np.radians(bearing)))
        # Each bearing belongs to the middle of its step.
        t_mid = (moving.t_us[:-1] + moving.t_us[1:]) / 2e6
        # The grid starts at t0 so that index k is time k / rate_hz; before the
        # first and after the last step the heading holds (rate 0).
        t_rel = t_mid - t0_us / 1e6
        grid = np.arange(0.0, t_rel[-1], 1.0 / rate_hz)
        if len(grid) < 2:
            return None
        heading_grid = np.interp(grid, t_rel, heading)
        # Compass bearing grows clockwise (right); yaw rate is positive left.
        rate: F64 = -np.gradient(heading_grid, 1.0 / rate_hz)
        return grid, rate
