"""Riding events overlaid on a synthesised ride's sensor streams.

The planner rides smoothly; real riders also pull wheelies, do stoppies,
drag a knee on the track, hit kerbs and deep potholes. These are hard
negatives for a crash detector (sharp pitch, hard braking, 3-7 g spikes) and
are added here to the *measured* body-frame streams of a ride (accel in g,
angular rate in deg/s, x forward, y left, z up), in place:

- wheelie: nose up 20-60 degrees over 0.4-0.8 s, held 0.5-3 s, down in
  0.3-0.6 s; gravity turns in the body frame, the pitch rate shows on y, the
  front wheel lands with 1.5-3.5 g;
- stoppie: 1.0-1.4 g of braking with the tail up 10-35 degrees, the rear
  wheel lands with 1.5-3 g;
- knee-down: at more than 35 degrees of lean, 1-4 s of knee-slider scraping
  (0.15-0.4 g broadband) with one or two 1-2 g touches;
- kerb: a 3-7 g vertical hit of 15-40 ms, the rear wheel's a little later,
  pitch and roll blips;
- deep pothole: two 3-5 g pulses a wheelbase apart.

The overlay keeps the stream's kinematics only approximately (a wheelie does
not change the speed the planner integrates); the crash detector sees 2 s
windows, where that does not show. Times are seconds from the first sample.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = ["STUNT_KINDS", "Stunt", "overlay_stunts"]

F32 = npt.NDArray[np.float32]

STUNT_KINDS = ("wheelie", "stoppie", "knee_down", "kerb", "pothole")
# Wheelbase of the bike (m): the rear wheel meets a kerb this far behind.
_WHEELBASE_M = 1.45
# A stunt needs some speed (m/s) and the knee a deep lean (degrees).
_MIN_SPEED_M_S = 6.0
_KNEE_LEAN_DEG = 35.0


@dataclass(frozen=True)
class Stunt:
    """One overlaid event: its kind and when it starts (s)."""

    kind: str
    t_s: float


def _half_sine(t: npt.NDArray[np.float64], start: float, width: float) -> F32:
    u = (t - start) / width
    return np.where((u > 0) & (u < 1), np.sin(np.pi * np.clip(u, 0, 1)), 0.0).astype(
        np.float32
    )


def _ramp(t: npt.NDArray[np.float64], start: float, width: float) -> F32:
    """Smooth 0 -> 1 from ``start`` over ``width`` (raised cosine)."""
    u = np.clip((t - start) / width, 0.0, 1.0)
    return (0.5 - 0.5 * np.cos(np.pi * u)).astype(np.float32)


def _pitch(
    t: npt.NDArray[np.float64], start: float, up_s: float, hold_s: float, down_s: float
) -> tuple[F32, F32]:
    """Return a pitch profile (rad, 0..1 scaled later) and its rate (1/s)."""
    shape = _ramp(t, start, up_s) - _ramp(t, start + up_s + hold_s, down_s)
    rate = np.gradient(shape, t).astype(np.float32) if len(t) > 1 else shape * 0
    return shape, rate


def _apply_pitch(
    accel: F32, gyro: F32, t: npt.NDArray[np.float64], angle_rad: F32, rate: F32
) -> None:
    """Turn gravity for a nose-up pitch of ``angle_rad`` (negative: nose down)."""
    accel[:, 0] += np.sin(angle_rad)
    accel[:, 2] += np.cos(angle_rad) - 1.0
    # Nose up is a negative rotation about y (y points left).
    gyro[:, 1] -= np.degrees(rate)


def overlay_stunts(
    t_s: npt.NDArray[np.float64],
    accel_g: F32,
    gyro_dps: F32,
    speed_m_s: npt.ArrayLike,
    lean_deg: npt.ArrayLike,
    on_bike: npt.ArrayLike,
    rng: np.random.Generator,
    per_hour: float = 20.0,
    kinds: tuple[str, ...] = STUNT_KINDS,
    avoid_s: tuple[float, float] | None = None,
) -> list[Stunt]:
    """Add about ``per_hour`` riding events of ``kinds`` to the streams in place.

    Args:
        t_s: sample times (s), ``accel_g`` (n, 3) and ``gyro_dps`` (n, 3) the
            measured streams to change.
        speed_m_s, lean_deg, on_bike: the ride's truth per sample; events go
            where the bike is ridden fast enough (knee-down: leaning deep).
        rng: the random stream (the caller's seed decides everything).
        per_hour: expected events per hour of riding (Poisson).
        kinds: which events to draw from.
        avoid_s: a time span (e.g. around a crash) that gets no event.

    Returns:
        The events added, in time order.
    """
    speed = np.asarray(speed_m_s, dtype=np.float64)
    lean = np.abs(np.asarray(lean_deg, dtype=np.float64))
    riding = np.asarray(on_bike, dtype=bool) & (speed >= _MIN_SPEED_M_S)
    if avoid_s is not None:
        riding &= (t_s < avoid_s[0]) | (t_s > avoid_s[1])
    if len(t_s) < 2 or not riding.any():
        return []
    dt = float(t_s[1] - t_s[0])
    hours = riding.sum() * dt / 3600.0
    count = int(rng.poisson(per_hour * hours))
    candidates = np.flatnonzero(riding[: max(0, len(t_s) - int(6.0 / dt))])
    deep = np.flatnonzero(riding & (lean >= _KNEE_LEAN_DEG))
    stunts: list[Stunt] = []
    for _ in range(count):
        kind = kinds[int(rng.integers(len(kinds)))]
        pool = deep if kind == "knee_down" and len(deep) else candidates
        if len(pool) == 0:
            continue
        i = int(pool[int(rng.integers(len(pool)))])
        _draw(kind, t_s, accel_g, gyro_dps, i, float(speed[i]), rng)
        stunts.append(Stunt(kind, float(t_s[i])))
    return sorted(stunts, key=lambda s: s.t_s)


def _draw(
    kind: str,
    t_s: npt.NDArray[np.float64],
    accel: F32,
    gyro: F32,
    i: int,
    speed_m_s: float,
    rng: np.random.Generator,
) -> None:
    """Draw one event starting at sample ``i``, on a local slice."""
    dt = float(t_s[1] - t_s[0])
    stop = min(len(t_s), i + int(7.0 / dt))
    t = t_s[i:stop]
    a = accel[i:stop]
    g = gyro[i:stop]
    t0 = float(t[0])
    u = rng.uniform
    if kind == "wheelie":
        up, hold, down = u(0.4, 0.8), u(0.5, 3.0), u(0.3, 0.6)
        shape, rate = _pitch(t, t0, up, hold, down)
        angle = math.radians(u(20.0, 60.0))
        _apply_pitch(a, g, t, shape * angle, rate * angle)
        a[:, 0] += u(0.2, 0.5) * shape  # it takes throttle
        land = t0 + up + hold + down
        a[:, 2] += u(1.5, 3.5) * _half_sine(t, land - 0.02, u(0.04, 0.08))
    elif kind == "stoppie":
        up, hold, down = u(0.3, 0.6), u(0.3, 1.5), u(0.3, 0.5)
        shape, rate = _pitch(t, t0 + 0.3, up, hold, down)
        angle = -math.radians(u(10.0, 35.0))
        brake = _ramp(t, t0, 0.3) - _ramp(t, t0 + 0.3 + up + hold, down)
        a[:, 0] -= u(1.0, 1.4) * brake
        _apply_pitch(a, g, t, shape * angle, rate * angle)
        land = t0 + 0.3 + up + hold + down
        a[:, 2] += u(1.5, 3.0) * _half_sine(t, land - 0.02, u(0.04, 0.07))
    elif kind == "knee_down":
        length = u(1.0, 4.0)
        inside = ((t >= t0) & (t < t0 + length)).astype(np.float32)
        scrape = rng.normal(0.0, u(0.15, 0.4), (len(t), 2)).astype(np.float32)
        a[:, 1:3] += scrape * inside[:, None]
        for _ in range(int(rng.integers(1, 3))):
            at = t0 + u(0.0, length)
            side = 1.0 if rng.random() < 0.5 else -1.0
            a[:, 1] += side * u(1.0, 2.0) * _half_sine(t, at, u(0.03, 0.08))
    else:
        peak = u(3.0, 7.0) if kind == "kerb" else u(3.0, 5.0)
        width = u(0.015, 0.04) if kind == "kerb" else u(0.03, 0.06)
        delay = _WHEELBASE_M / max(speed_m_s, _MIN_SPEED_M_S)
        for start, share, pitch_sign in ((t0, 1.0, -1.0), (t0 + delay, 0.8, 1.0)):
            pulse = share * peak * _half_sine(t, start, width)
            a[:, 2] += pulse
            a[:, 0] -= 0.3 * pulse
            g[:, 1] += pitch_sign * 15.0 * pulse
            if kind == "kerb":
                g[:, 0] += u(-10.0, 10.0) * pulse
