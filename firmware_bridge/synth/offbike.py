"""Life off the bike: what a suit's IMU records when nobody is riding.

A crash detector must stay quiet while the rider walks to a café, runs up
the stairs, jumps off a wall, drops onto a bench, or while the jacket is
dropped on the floor, thrown into a car and driven home. ``offbike_stream``
synthesises such a session as measured body-frame streams (accel in g,
angular rate in deg/s, x forward, y left, z up at the suit's back) at any
native rate, as a sequence of scenes drawn from ``OFFBIKE_SCENES``:

- worn: ``stand``, ``sit``, ``walk``, ``stairs`` (up or down), ``jog``,
  ``jump`` (one to five jumps, 4-9 g landings), ``sit_hard`` (dropping onto a
  seat, 2.5-6 g), ``carry`` (a bag on the back, walking);
- carried or lying: ``drop`` (the jacket falls 0.8-1.5 m, tumbling, 3-15 g on
  the floor, a bounce, rest in a random orientation), ``throw_car`` (swung and
  thrown onto a car seat, then the car drives with the jacket on the seat:
  braking, turns, road vibration, speed bumps), ``lie`` (on a table, still).

Gait is a step-frequency model: vertical support as half-sine stance pulses
(mean 1 g), heel strikes, forward surge, lateral sway at half the step rate,
and the matching trunk rotations. Sensor noise, bias and a little vibration
are added; clipping and int16 quantisation are the caller's (the full scale
is a property of the suit, not of the scene). Everything follows the seed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = ["OFFBIKE_SCENES", "OffBikeStream", "Scene", "offbike_stream"]

F64 = npt.NDArray[np.float64]

OFFBIKE_SCENES = (
    "stand",
    "sit",
    "walk",
    "stairs",
    "jog",
    "jump",
    "sit_hard",
    "carry",
    "drop",
    "throw_car",
    "lie",
)
# Relative frequency of each scene in a session: mostly calm, with plenty of
# the sharp ones a detector could mistake for a crash.
_SCENE_WEIGHTS = (3, 2, 4, 2, 2, 2, 2, 1, 2, 2, 1)
# Scene lengths (s): long enough for several windows of each.
_SCENE_S = (20.0, 120.0)
# Sensor noise (1 sigma) and constant bias, as on the riding synthesiser's IMU.
_ACCEL_NOISE_G = 0.004
_GYRO_NOISE_DPS = 0.15
_ACCEL_BIAS_G = 0.012
_GYRO_BIAS_DPS = 0.35


@dataclass(frozen=True)
class Scene:
    """One scene of a session: kind, start and end (s from the first sample)."""

    kind: str
    t_start_s: float
    t_end_s: float


@dataclass(frozen=True)
class OffBikeStream:
    """A synthesised off-bike session at ``rate_hz``."""

    rate_hz: float
    t_s: F64
    accel_g: npt.NDArray[np.float32]
    gyro_dps: npt.NDArray[np.float32]
    scenes: list[Scene]

    @property
    def duration_s(self) -> float:
        """Return the session length (s)."""
        return len(self.t_s) / self.rate_hz


def _rotation(rng: np.random.Generator) -> F64:
    """Return a uniformly random rotation matrix."""
    q = rng.normal(size=4)
    q /= np.linalg.norm(q)
    w, x, y, z = q
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        ]
    )


def _half_sine(t: F64, start: float, width: float) -> F64:
    u = (t - start) / width
    return np.where((u > 0) & (u < 1), np.sin(np.pi * np.clip(u, 0.0, 1.0)), 0.0)


def _gait(
    t: F64, rng: np.random.Generator, step_hz: float, stance: float, heel_g: float
) -> tuple[F64, F64]:
    """Return trunk accel (g) and rate (dps) of walking or running, (n, 3)."""
    phase = 2 * np.pi * step_hz * t + rng.uniform(0, 2 * np.pi)
    cycle = (phase / (2 * np.pi)) % 1.0
    # Vertical support: a half-sine per stance with mean 1 g.
    support = np.where(cycle < stance, np.sin(np.pi * cycle / stance), 0.0)
    support *= math.pi / (2 * stance)
    heel = heel_g * np.exp(-(((cycle - 0.02) / 0.015) ** 2))
    acc = np.zeros((len(t), 3))
    acc[:, 2] = support + heel
    acc[:, 0] = 0.25 * (support - 1.0) * rng.uniform(0.5, 1.0) + 0.4 * heel
    acc[:, 1] = rng.uniform(0.05, 0.15) * np.sin(phase / 2)
    gyr = np.zeros((len(t), 3))
    gyr[:, 0] = rng.uniform(5, 15) * np.sin(phase / 2 + 0.3)
    gyr[:, 1] = rng.uniform(8, 20) * np.sin(phase + 0.8) * (1 + (stance < 0.5))
    gyr[:, 2] = rng.uniform(8, 20) * np.sin(phase / 2)
    return acc, gyr


def _upright(n: int, pitch_deg: float) -> F64:
    acc = np.zeros((n, 3))
    acc[:, 0] = math.sin(math.radians(pitch_deg))
    acc[:, 2] = math.cos(math.radians(pitch_deg))
    return acc


def _scene(kind: str, t: F64, rng: np.random.Generator) -> tuple[F64, F64]:
    """Return accel (g) and rate (dps) of one scene over local times ``t``."""
    n = len(t)
    u = rng.uniform
    acc = _upright(n, u(-5, 15))
    gyr = np.zeros((n, 3))
    if kind in ("stand", "sit"):
        sway = 0.01 if kind == "stand" else 0.004
        acc += rng.normal(0, sway, (n, 3)).cumsum(axis=0) * 0.02
        gyr += rng.normal(0, 0.5 if kind == "stand" else 0.2, (n, 3))
    elif kind in ("walk", "carry"):
        a, g = _gait(t, rng, u(1.6, 2.1), u(0.6, 0.7), u(0.3, 1.2))
        acc += a - [0, 0, 1]
        gyr += g
    elif kind == "stairs":
        a, g = _gait(t, rng, u(1.3, 1.8), u(0.5, 0.65), u(0.8, 2.2))
        acc += a - [0, 0, 1]
        gyr += 1.4 * g
    elif kind == "jog":
        a, g = _gait(t, rng, u(2.5, 3.2), u(0.35, 0.45), u(0.5, 1.5))
        acc += a - [0, 0, 1]
        gyr += 2.5 * g
    elif kind == "jump":
        at = u(1.0, 3.0)
        for _ in range(int(rng.integers(1, 6))):
            flight = u(0.25, 0.5)
            dip = _half_sine(t, at, 0.3)
            push = _half_sine(t, at + 0.3, 0.2)
            air = ((t > at + 0.5) & (t < at + 0.5 + flight)).astype(float)
            land = _half_sine(t, at + 0.5 + flight, u(0.04, 0.08))
            acc[:, 2] += -0.5 * dip + u(1.0, 1.8) * push - air + u(4.0, 9.0) * land
            acc[:, 0] += u(-0.5, 1.0) * land
            gyr[:, 1] += u(50, 150) * (_half_sine(t, at, 0.5) - land)
            at += 0.5 + flight + u(1.0, 5.0)
        gyr += rng.normal(0, 2.0, (n, 3))
    elif kind == "sit_hard":
        at = u(1.0, 4.0)
        fall = u(0.25, 0.4)
        pitch = math.radians(u(15, 30))
        tilt = np.clip((t - at) / (fall + 0.3), 0.0, 1.0) * pitch
        acc[:, 0] = -np.sin(tilt)
        acc[:, 2] = np.cos(tilt)
        acc[:, 2] -= u(0.3, 0.5) * ((t > at) & (t < at + fall))
        acc[:, 2] += u(2.5, 6.0) * _half_sine(t, at + fall, u(0.04, 0.08))
        gyr[:, 1] += (
            np.degrees(pitch) / (fall + 0.3) * ((t > at) & (t < at + fall + 0.3))
        )
        gyr[:, 1] += u(-80, 80) * _half_sine(t, at + fall, 0.1)
        gyr += rng.normal(0, 0.5, (n, 3))
    elif kind == "lie":
        acc = np.broadcast_to(_rotation(rng)[:, 2], (n, 3)).copy()
        gyr += rng.normal(0, 0.1, (n, 3))
    elif kind == "drop":
        acc, gyr = _drop(t, rng, onto_seat=False)
    else:
        acc, gyr = _drop(t, rng, onto_seat=True)
    return acc, gyr


def _drop(t: F64, rng: np.random.Generator, onto_seat: bool) -> tuple[F64, F64]:
    """Carried, then dropped (or thrown onto a car seat), then lying or driven."""
    n = len(t)
    u = rng.uniform
    at = u(2.0, 6.0)
    a_walk, g_walk = _gait(t, rng, u(1.6, 2.0), 0.65, u(0.2, 0.6))
    acc = _upright(n, 0.0) + a_walk - [0, 0, 1]
    gyr = g_walk.copy()
    before = t < at
    flight = math.sqrt(2 * u(0.8, 1.5) / 9.81) if not onto_seat else u(0.2, 0.6)
    if onto_seat:  # the swing and the throw
        swing = _half_sine(t, at - 0.6, 0.6)
        acc[:, 0] += u(1.0, 2.5) * swing
        gyr[:, 1] += u(100, 300) * swing
    land_at = at + flight
    air = (t >= at) & (t < land_at)
    spin = rng.normal(0, 1, 3)
    spin *= u(100, 600) / np.linalg.norm(spin)
    acc[air] = rng.normal(0, 0.05, (int(air.sum()), 3))
    gyr[air] = spin
    rest = _rotation(rng)[:, 2]
    after = t >= land_at
    acc[after] = rest
    gyr[after] = 0.0
    peak = u(2.0, 6.0) if onto_seat else u(3.0, 15.0)
    direction = rest + rng.normal(0, 0.3, 3)
    direction /= np.linalg.norm(direction)
    width = u(0.04, 0.09) if onto_seat else u(0.015, 0.05)
    acc += np.outer(peak * _half_sine(t, land_at, width), direction)
    bounce = _half_sine(t, land_at + u(0.1, 0.3), 0.05)
    acc += np.outer(u(0.5, 2.0) * bounce, direction)
    gyr += np.outer(_half_sine(t, land_at, 0.2), rng.normal(0, 80, 3))
    if onto_seat:  # the car drives off a little later with the jacket on the seat
        drive = t >= land_at + u(5.0, 15.0)
        nd = int(drive.sum())
        if nd:
            td = t[drive]
            long_g = 0.25 * np.sin(2 * np.pi * td / u(15, 40)) * u(0.5, 1.5)
            lat_g = 0.3 * np.sin(2 * np.pi * td / u(8, 25)) * u(0.3, 1.2)
            car = np.column_stack([long_g, lat_g, np.zeros(nd)])
            vib = rng.normal(0, u(0.02, 0.08), (nd, 3))
            bumps = np.zeros(nd)
            for b_at in rng.uniform(td[0], td[-1], int(rng.integers(0, 4))):
                bumps += u(0.3, 1.2) * _half_sine(td, b_at, 0.08)
            # The car's frame to the jacket's: a random rotation.
            acc[drive] += (car + vib) @ _rotation(rng).T + np.outer(bumps, rest)
            gyr[drive] += np.outer(np.degrees(lat_g / 8.0), rest)
    gyr[before] += rng.normal(0, 1.0, (int(before.sum()), 3))
    return acc, gyr


def offbike_stream(
    seed: int,
    duration_s: float,
    rate_hz: float = 100.0,
    scenes: tuple[str, ...] = OFFBIKE_SCENES,
) -> OffBikeStream:
    """Synthesise ``duration_s`` of life off the bike at ``rate_hz``.

    Args:
        seed: decides the scenes, their order and every detail.
        duration_s: session length (s).
        rate_hz: native sample rate (10-4000 Hz).
        scenes: which scene kinds to draw from (weights as ``OFFBIKE_SCENES``).

    Raises:
        ValueError: a duration, rate or scene name is out of range.
    """
    if not (duration_s > 0 and math.isfinite(duration_s)):
        raise ValueError(f"duration_s must be a positive number, found {duration_s}")
    if not 10.0 <= rate_hz <= 4000.0:
        raise ValueError(f"rate_hz must be 10-4000 Hz, found {rate_hz}")
    unknown = set(scenes) - set(OFFBIKE_SCENES)
    if unknown:
        raise ValueError(f"unknown off-bike scenes {sorted(unknown)}")
    rng = np.random.default_rng(seed)
    weights = np.array(
        [w for s, w in zip(OFFBIKE_SCENES, _SCENE_WEIGHTS, strict=True) if s in scenes],
        dtype=np.float64,
    )
    names = [s for s in OFFBIKE_SCENES if s in scenes]
    n = int(duration_s * rate_hz)
    t_all = np.arange(n) / rate_hz
    acc = np.empty((n, 3))
    gyr = np.empty((n, 3))
    drawn: list[Scene] = []
    start = 0
    while start < n:
        kind = names[int(rng.choice(len(names), p=weights / weights.sum()))]
        length = int(rng.uniform(*_SCENE_S) * rate_hz)
        stop = min(n, start + length)
        local = t_all[start:stop] - t_all[start]
        acc[start:stop], gyr[start:stop] = _scene(kind, local, rng)
        drawn.append(Scene(kind, start / rate_hz, stop / rate_hz))
        start = stop
    accel = acc.astype(np.float32) + rng.normal(0, _ACCEL_BIAS_G, 3).astype(np.float32)
    accel += np.float32(_ACCEL_NOISE_G) * rng.standard_normal((n, 3), np.float32)
    gyro = gyr.astype(np.float32) + rng.normal(0, _GYRO_BIAS_DPS, 3).astype(np.float32)
    gyro += np.float32(_GYRO_NOISE_DPS) * rng.standard_normal((n, 3), np.float32)
    return OffBikeStream(rate_hz, t_all, accel, gyro, drawn)
