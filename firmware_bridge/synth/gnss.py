"""GNSS fixes from the true track: ENU around a base point, with receiver errors.

The track is integrated in a local east-north-up frame (trapezoid rule on the
ground speed and direction of travel) and converted to latitude/longitude
around the base coordinate with a spherical Earth, which is accurate to well
under a metre over the tens of kilometres of a ride. Errors: a slowly
wandering position error (first-order Gauss-Markov, 2 m horizontal and 4 m
vertical, 30 s correlation) plus 0.5 m white noise; speed noise 0.15 m/s;
course noise that grows at low speed, and the course frozen below 0.5 m/s
as receivers do. Until the first fix (3-12 s after power-up) records carry
``fix = 0`` and zero position.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from firmware_bridge.logformat import GNSS_DTYPE

from .spec import RideSpec

__all__ = ["GnssModel", "TrackIntegrator"]

F64 = npt.NDArray[np.float64]

_EARTH_RADIUS_M = 6_371_000.0
# Base coordinate: around Bologna, Italy (a few tens of km either way by seed).
_BASE_LAT_DEG = 44.49
_BASE_LON_DEG = 11.34
_BASE_SPREAD_DEG = 0.3
_POS_WANDER_M = 2.0
_ALT_WANDER_M = 4.0
_WANDER_TAU_S = 30.0
_POS_WHITE_M = 0.5
_SPEED_NOISE_M_S = 0.15
# Below this measured speed the receiver keeps its last course.
_COURSE_MIN_SPEED_M_S = 0.5
_FIX_3D = 3


class TrackIntegrator:
    """Integrate ground speed and direction into east, north and distance."""

    def __init__(self, rate_hz: float) -> None:
        self.dt = 1.0 / rate_hz
        self._prev: tuple[float, float, float] | None = None
        self._pos = (0.0, 0.0, 0.0)

    def advance(self, speed_m_s: F64, heading_rad: F64) -> tuple[F64, F64, F64]:
        """Return east, north (m) and distance (m) at each sample (trapezoid)."""
        ve = speed_m_s * np.cos(heading_rad)
        vn = speed_m_s * np.sin(heading_rad)
        first_chunk = self._prev is None
        if self._prev is None:
            self._prev = (float(ve[0]), float(vn[0]), float(speed_m_s[0]))
        increments = []
        for prev, cur in zip(self._prev, (ve, vn, speed_m_s), strict=True):
            step = (np.concatenate([[prev], cur[:-1]]) + cur) / 2 * self.dt
            if first_chunk:
                step[0] = 0.0
            increments.append(step)
        east, north, dist = (
            start + np.cumsum(step)
            for start, step in zip(self._pos, increments, strict=True)
        )
        self._prev = (float(ve[-1]), float(vn[-1]), float(speed_m_s[-1]))
        self._pos = (float(east[-1]), float(north[-1]), float(dist[-1]))
        return east, north, dist


class GnssModel:
    """Produce GNSS records at the fix rate, chunk after chunk."""

    def __init__(self, spec: RideSpec, seed: np.random.SeedSequence) -> None:
        rng = np.random.default_rng(seed)
        self.rate_hz = spec.sample_rate_hz
        self.fix_hz = spec.gnss_rate_hz
        self.lat0 = _BASE_LAT_DEG + rng.uniform(-_BASE_SPREAD_DEG, _BASE_SPREAD_DEG)
        self.lon0 = _BASE_LON_DEG + rng.uniform(-_BASE_SPREAD_DEG, _BASE_SPREAD_DEG)
        self.alt0_m = rng.uniform(40.0, 400.0)
        self.terrain = rng.uniform(0.0, 2 * np.pi, 2)
        self.first_fix_s = rng.uniform(3.0, 12.0)
        self.satellites = int(rng.integers(9, 17))
        self._rho = math.exp(-1.0 / (self.fix_hz * _WANDER_TAU_S))
        self._wander = rng.normal(0.0, 1.0, 3) * [
            _POS_WANDER_M,
            _POS_WANDER_M,
            _ALT_WANDER_M,
        ]
        self._next_epoch = 0
        self._course_cdeg = 0
        self._rng = rng

    def records(
        self,
        first_sample: int,
        t_us: npt.NDArray[np.uint32],
        speed_m_s: F64,
        heading_rad: F64,
        east_m: F64,
        north_m: F64,
        dist_m: F64,
    ) -> tuple[npt.NDArray[np.void], npt.NDArray[np.int64]]:
        """Return the GNSS records whose epochs fall in this chunk, and their
        global sample indices."""
        last = first_sample + len(t_us) - 1
        k_last = math.floor((last + 0.5) * self.fix_hz / self.rate_hz)
        epochs = np.arange(self._next_epoch, k_last + 1, dtype=np.int64)
        index = np.rint(epochs * self.rate_hz / self.fix_hz).astype(np.int64)
        keep = index <= last
        epochs, index = epochs[keep], index[keep]
        if len(epochs):
            self._next_epoch = int(epochs[-1]) + 1
        local = index - first_sample
        n = len(local)

        # Receiver errors: Gauss-Markov wander plus white noise.
        rng = self._rng
        scale = np.array([_POS_WANDER_M, _POS_WANDER_M, _ALT_WANDER_M])
        drive = rng.normal(0.0, 1.0, (n, 3)) * scale * math.sqrt(1 - self._rho**2)
        wander = np.empty((n, 3))
        state = self._wander
        for i in range(n):
            state = self._rho * state + drive[i]
            wander[i] = state
        self._wander = state
        white = rng.normal(0.0, _POS_WHITE_M, (n, 3))
        speed_noise = rng.normal(0.0, _SPEED_NOISE_M_S, n)
        course_noise = rng.normal(0.0, 1.0, n)
        sats = np.clip(self.satellites + rng.integers(-2, 3, n), 4, 24)

        e = east_m[local] + wander[:, 0] + white[:, 0]
        nn = north_m[local] + wander[:, 1] + white[:, 1]
        d = dist_m[local]
        terrain = 15.0 * np.sin(
            2 * np.pi * d / 3000.0 + self.terrain[0]
        ) + 6.0 * np.sin(2 * np.pi * d / 700.0 + self.terrain[1])
        alt = self.alt0_m + terrain + wander[:, 2] + white[:, 2]
        lat = self.lat0 + np.degrees(nn / _EARTH_RADIUS_M)
        lon = self.lon0 + np.degrees(
            e / (_EARTH_RADIUS_M * math.cos(math.radians(self.lat0)))
        )
        v = np.abs(speed_m_s[local] + speed_noise)
        course_deg = (90.0 - np.degrees(heading_rad[local])) % 360.0
        course_deg += course_noise * (0.5 + 3.0 / (v + 0.5))
        course = np.rint(course_deg % 360.0 * 100).astype(np.int64) % 36000

        # Frozen course at low speed: carry the last moving course forward.
        moving = v >= _COURSE_MIN_SPEED_M_S
        last_moving = (
            np.maximum.accumulate(np.where(moving, np.arange(n), -1)) if n else moving
        )
        course = np.where(
            last_moving >= 0, course[np.maximum(last_moving, 0)], self._course_cdeg
        )
        if n:
            self._course_cdeg = int(course[-1])

        out = np.zeros(n, dtype=GNSS_DTYPE)
        out["t_us"] = t_us[local]
        fixed = index / self.rate_hz >= self.first_fix_s
        out["lat_e7"] = np.where(fixed, np.rint(lat * 1e7), 0)
        out["lon_e7"] = np.where(fixed, np.rint(lon * 1e7), 0)
        out["alt_mm"] = np.where(fixed, np.rint(alt * 1000), 0)
        out["speed_mm_s"] = np.where(fixed, np.rint(v * 1000), 0)
        out["heading_cdeg"] = np.where(fixed, course, 0)
        out["fix"] = np.where(fixed, _FIX_3D, 0)
        out["satellites"] = np.where(fixed, sats, 0)
        return out, index
