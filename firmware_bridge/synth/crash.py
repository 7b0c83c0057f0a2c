"""Crashes: lowside, highside, collision, drawn on a ``CrashCanvas``.

Times are seconds after onset, angles degrees unless named ``_rad``, forces
in g in the track frame (x along travel, y left, z up). ``side`` is the side
the bike leans to at onset (+1 right, -1 left, as the lean's sign).

- lowside: the front washes out; rider and bike fall to the low side (roll
  to about 90 degrees in 0.35-0.6 s, support fading), hit the ground (5-11 g
  for 30-60 ms), bounce, and slide on the side, maybe rolling onto the back;
- highside: the rear steps out (yaw, more lean), grips again and flicks the
  rider over the high side (roll of 90-150 degrees in ~0.15 s, 2-4 g launch),
  0.4-0.9 s of free fall tumbling, a hard landing (12-30 g at 70 km/h and
  more, less when slower; clipped by a 16 g sensor), tumbling with secondary
  hits, slide;
- standstill: stopped with a foot down, the bike tips over (roll to about
  90 degrees in 0.6-1.1 s as support fades), the rider lands on the side
  (3-7 g), no slide;
- collision: the bike hits an obstacle; the rider decelerates by 30-55 % of
  the speed in 60-120 ms (3-25 g), pitches over the bars, flies 0.3-0.7 s,
  lands (8-26 g, less below 45 km/h), tumbles and slides.

The airbag controller fires 30-80 ms after onset (an ``AIRBAG_DEPLOYED``
event record).
"""

from __future__ import annotations

import math

import numpy as np

from .constants import G_M_S2
from .crash_canvas import CrashCanvas, CrashTrack, OnsetState

__all__ = ["build_crash"]

# Extra canvas time after the slide's worst-case end (s).
_CANVAS_MARGIN_S = 3.0
# Minimum friction coefficient of a suit on asphalt used for canvas sizing.
_MU_MIN = 0.45


def _u(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(rng.uniform(lo, hi))


def _canvas(onset: OnsetState, rate_hz: float, slide_start_s: float) -> CrashCanvas:
    worst_slide_s = (onset.speed_m_s + 2.0) / (_MU_MIN * G_M_S2)
    return CrashCanvas(onset, rate_hz, slide_start_s + worst_slide_s + _CANVAS_MARGIN_S)


def _side(onset: OnsetState, rng: np.random.Generator) -> float:
    if abs(onset.roll_rad) > math.radians(3.0):
        return math.copysign(1.0, onset.roll_rad)
    return 1.0 if rng.random() < 0.5 else -1.0


def _random_axis(rng: np.random.Generator, z_weight: float = 0.3) -> np.ndarray:
    beta = _u(rng, 0, 2 * math.pi)
    return np.array([math.cos(beta), math.sin(beta), _u(rng, -z_weight, z_weight)])


def _speed_factor(onset: OnsetState, reference_m_s: float, floor: float) -> float:
    """Scale impacts with speed: ``floor`` at a standstill, 1.3 at most."""
    return float(np.clip(onset.speed_m_s / reference_m_s, floor, 1.3))


def _lowside(
    onset: OnsetState, rate_hz: float, rng: np.random.Generator
) -> tuple[CrashCanvas, float]:
    side = _side(onset, rng)
    fall_s = _u(rng, 0.35, 0.6)
    slide_start = fall_s + 0.1
    cv = _canvas(onset, rate_hz, slide_start)
    x, _, z = np.eye(3)

    fall_to = side * math.radians(_u(rng, 85, 100))
    cv.body_turn(x, 0.0, fall_s, fall_to - onset.roll_rad)
    cv.world_turn(z, 0.05, fall_s, math.radians(_u(rng, -30, 30)))
    cv.base[:, 2] = (
        1.0 - 0.65 * cv.step(0.05, fall_s) + 0.65 * cv.step(fall_s, fall_s + 0.05)
    )
    cv.base[:, 0] = -_u(rng, 0.2, 0.4) * cv.window(0.0, fall_s)

    peak = _u(rng, 5.0, 11.0) * _speed_factor(onset, 20.0, 0.5)
    cv.pulse(fall_s, _u(rng, 0.03, 0.06), peak, np.array([-0.35, side * 0.3, 0.9]))
    cv.pulse(fall_s + _u(rng, 0.2, 0.4), 0.04, _u(rng, 1.5, 3.5), z)
    if rng.random() < 0.4:  # rolls onto the back or front while sliding
        cv.body_turn(x, slide_start + 0.3, slide_start + 1.3, side * math.radians(90))
    return cv, slide_start


def _highside(
    onset: OnsetState, rate_hz: float, rng: np.random.Generator
) -> tuple[CrashCanvas, float]:
    side = _side(onset, rng)
    slip_s = _u(rng, 0.15, 0.3)
    flick_s = _u(rng, 0.12, 0.2)
    launch_end = slip_s + flick_s
    land_s = launch_end + _u(rng, 0.4, 0.9)
    tumble_s = _u(rng, 0.6, 1.4)
    slide_start = land_s + tumble_s
    cv = _canvas(onset, rate_hz, slide_start)
    x, y, z = np.eye(3)

    # Rear steps out: the bike yaws into the turn and leans further.
    cv.world_turn(z, 0.0, slip_s, -side * math.radians(_u(rng, 15, 35)))
    cv.body_turn(x, 0.0, slip_s, side * math.radians(_u(rng, 3, 8)))
    cv.base[:, 1] = 0.4 * onset.f_track_g[1] * cv.window(0.0, slip_s)
    # Grip returns: flicked over the high side and launched.
    flick = -side * (abs(onset.roll_rad) + math.radians(_u(rng, 50, 100)))
    cv.body_turn(x, slip_s, launch_end, flick)
    cv.body_turn(y, slip_s, launch_end, math.radians(_u(rng, 15, 40)))
    cv.pulse(
        slip_s + flick_s / 2,
        flick_s,
        _u(rng, 2.0, 4.0),
        np.array([0.0, side * 0.35, 0.94]),
    )
    # Free fall, tumbling, with a little air drag.
    airborne = cv.step(launch_end - 0.02, launch_end + 0.03) - cv.step(
        land_s - 0.01, land_s + 0.02
    )
    cv.base[:, 2] = 1.0 - airborne
    cv.base[:, 0] = -0.08 * airborne - 0.9 * cv.window(land_s, slide_start)
    cv.body_turn(_random_axis(rng), launch_end, land_s, math.radians(_u(rng, 180, 450)))
    # Landing, then tumbling with secondary hits.
    peak = _u(rng, 12.0, 30.0) * _speed_factor(onset, 20.0, 0.7)
    cv.pulse(land_s, _u(rng, 0.02, 0.045), peak, np.array([-0.4, 0.0, 0.92]))
    cv.body_turn(_random_axis(rng), land_s, slide_start, math.radians(_u(rng, 90, 300)))
    for _ in range(int(rng.integers(2, 4))):
        at = land_s + _u(rng, 0.15, 0.9) * tumble_s
        cv.pulse(at, _u(rng, 0.03, 0.05), _u(rng, 3.0, 8.0), _random_axis(rng) + 3 * z)
    return cv, slide_start


def _collision(
    onset: OnsetState, rate_hz: float, rng: np.random.Generator
) -> tuple[CrashCanvas, float]:
    hit_s = _u(rng, 0.06, 0.12)
    take_off = 0.02 + hit_s + 0.02
    land_s = take_off + _u(rng, 0.3, 0.7)
    tumble_s = _u(rng, 0.5, 1.2)
    slide_start = land_s + tumble_s
    cv = _canvas(onset, rate_hz, slide_start)
    x, y, z = np.eye(3)

    # The rider loses 30-55 % of the speed against tank and handlebars.
    share = _u(rng, 0.3, 0.55)
    peak = share * onset.speed_m_s * math.pi / (2 * hit_s * G_M_S2)
    cv.pulse(
        0.02 + hit_s / 2,
        hit_s,
        float(np.clip(peak, 3.0, 25.0)),
        np.array([-1.0, 0.0, 0.15]),
    )
    cv.body_turn(y, 0.03, 0.03 + _u(rng, 0.15, 0.25), math.radians(_u(rng, 20, 45)))
    # Over the bars: free fall, somersault.
    airborne = cv.step(take_off - 0.02, take_off + 0.03) - cv.step(
        land_s - 0.01, land_s + 0.02
    )
    cv.base[:, 2] = 1.0 - airborne
    cv.base[:, 0] = -0.05 * airborne - 0.9 * cv.window(land_s, slide_start)
    cv.body_turn(y, take_off, land_s, math.radians(_u(rng, 90, 250)))
    cv.body_turn(x, take_off, land_s, math.radians(_u(rng, -80, 80)))
    # Landing, tumbling.
    landing = _u(rng, 8.0, 26.0) * _speed_factor(onset, 12.0, 0.6)
    cv.pulse(
        land_s, _u(rng, 0.025, 0.05), landing, np.array([-0.4, _u(rng, -0.2, 0.2), 0.9])
    )
    cv.body_turn(_random_axis(rng), land_s, slide_start, math.radians(_u(rng, 90, 270)))
    at = land_s + _u(rng, 0.2, 0.8) * tumble_s
    cv.pulse(at, 0.04, _u(rng, 3.0, 6.0), _random_axis(rng) + 3 * z)
    return cv, slide_start


def _standstill(
    onset: OnsetState, rate_hz: float, rng: np.random.Generator
) -> tuple[CrashCanvas, float]:
    """Tip over with the bike at a standstill (a foot slips at the lights)."""
    side = _side(onset, rng)
    fall_s = _u(rng, 0.6, 1.1)
    cv = _canvas(onset, rate_hz, fall_s + 0.2)
    x, _, z = np.eye(3)

    cv.body_turn(x, 0.0, fall_s, side * math.radians(_u(rng, 75, 95)) - onset.roll_rad)
    cv.world_turn(z, 0.1, fall_s, math.radians(_u(rng, -20, 20)))
    # Support fades as the bike goes over, returns when the rider lands.
    cv.base[:, 2] = (
        1.0
        - 0.55 * cv.step(0.3 * fall_s, fall_s)
        + 0.55 * cv.step(fall_s, fall_s + 0.05)
    )
    peak = _u(rng, 3.0, 7.0)
    cv.pulse(fall_s, _u(rng, 0.04, 0.08), peak, np.array([0.0, side * 0.4, 0.9]))
    cv.pulse(fall_s + _u(rng, 0.15, 0.3), 0.05, _u(rng, 1.0, 2.0), z)
    return cv, fall_s + 0.1


_KINDS = {
    "lowside": _lowside,
    "highside": _highside,
    "collision": _collision,
    "standstill": _standstill,
}


def build_crash(
    kind: str, onset: OnsetState, rate_hz: float, rng: np.random.Generator
) -> CrashTrack:
    """Render a crash of ``kind`` starting from ``onset`` on the sample grid."""
    canvas, slide_start = _KINDS[kind](onset, rate_hz, rng)
    mu = _u(rng, _MU_MIN, 0.7)
    spin = math.radians(_u(rng, 30, 120)) * (1.0 if rng.random() < 0.5 else -1.0)
    airbag_s = _u(rng, 0.03, 0.08)
    return canvas.render(kind, slide_start, mu, spin, airbag_s, rng)
