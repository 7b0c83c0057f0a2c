"""Riding scenarios: city, highway, track and mixed (with country roads).

Each planner appends manoeuvres to a ``PlanBuilder`` until the cursor passes
``until_s``; with ``arrive`` it then brakes to a standstill. Speeds are in
m/s (``_kmh`` converts), angles in degrees, accelerations in g.

- city: 30-50 km/h, traffic lights, 90-degree junctions (leans 15-28
  degrees), roundabouts, u-turns, the odd emergency stop;
- highway: on-ramp, 100-130 km/h, long gentle bends, overtakes with lane
  changes, slow-downs, exit ramp;
- track: a circuit of 9-14 corners ridden lap after lap, leans 45-55
  degrees, braking at 1.0-1.2 g, hard staged acceleration to 290 km/h;
- country roads (inside mixed): 60-90 km/h, sweepers, hairpins, bends;
- mixed: city, country, highway, city.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from .constants import G_M_S2
from .planner import PlanBuilder, RidingStyle

__all__ = ["plan_riding"]

# Top speed on the track (m/s): about 290 km/h.
_TRACK_TOP_M_S = 80.0
# Staged acceleration on the track: (up to speed m/s, acceleration g); the
# short dips between stages are the gear changes.
_TRACK_ACCEL_STAGES = ((28.0, 0.75), (45.0, 0.5), (_TRACK_TOP_M_S, 0.3))


def _kmh(value: float) -> float:
    return value / 3.6


def _u(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(rng.uniform(lo, hi))


def _side(rng: np.random.Generator, p_left: float = 0.5) -> float:
    return 1.0 if rng.random() < p_left else -1.0


def plan_riding(b: PlanBuilder, scenario: str, until_s: float) -> None:
    """Ride ``scenario`` from a standstill until ``until_s``, then stop."""
    planners: dict[str, Callable[[PlanBuilder, float, bool], None]] = {
        "city": _city,
        "highway": _highway,
        "track": _track,
        "mixed": _mixed,
    }
    planners[scenario](b, until_s, True)


def _pull_away(b: PlanBuilder, v_target: float, accel_g: float) -> None:
    if b.v < 1.0:
        b.speed_to(v_target, accel_g * G_M_S2, _u(b.rng, 0.6, 1.0))
    else:
        b.speed_to(v_target, min(accel_g, 0.2) * G_M_S2, 0.8)


def _foot_down_stop(b: PlanBuilder, wait_s: float, hard: bool = False) -> None:
    """Stop, put a foot down (bike leans ~3 degrees left), wait, go."""
    b.brake_to(0.0, hard=hard)
    b.roll_to(-math.radians(_u(b.rng, 2.0, 5.0)), 0.8)
    b.hold(max(1.0, wait_s - 0.7))
    b.roll_to(0.0, 0.6)
    b.hold(0.7)


def _city(b: PlanBuilder, until_s: float, arrive: bool) -> None:
    rng = b.rng
    b.set_style(RidingStyle.CITY)
    while b.t < until_s:
        _pull_away(b, _kmh(_u(rng, 30, 50)), _u(rng, 0.15, 0.3))
        b.hold(_u(rng, 4, 20))
        if b.t >= until_s:
            break
        x = rng.random()
        if x < 0.33:  # junction
            b.brake_to(_kmh(_u(rng, 15, 25)), hard=rng.random() < 0.05)
            b.hold(_u(rng, 0.5, 2.0))
            b.turn(_side(rng) * _u(rng, 80, 100), _u(rng, 15, 28), _u(rng, 0.7, 1.1))
            b.hold(_u(rng, 0.5, 1.5))
        elif x < 0.58:  # traffic light
            _foot_down_stop(b, _u(rng, 5, 40), hard=rng.random() < 0.1)
        elif x < 0.78:
            b.bend(_side(rng) * _u(rng, 8, 25), _u(rng, 3, 6))
        elif x < 0.84:  # roundabout: one continuous left turn (right-hand traffic)
            b.brake_to(_kmh(_u(rng, 20, 26)), hard=False)
            b.hold(1.0)
            b.turn(_u(rng, 150, 270), _u(rng, 15, 25), 0.8)
        elif x < 0.93:  # u-turn
            b.brake_to(_kmh(_u(rng, 12, 16)), hard=False)
            b.hold(1.0)
            b.turn(_side(rng) * 180.0, _u(rng, 10, 16), 0.9)
        else:  # emergency stop for a car pulling out
            b.brake_to(max(0.0, b.v - _kmh(_u(rng, 28, 40))), hard=True)
            b.hold(_u(rng, 1, 3))
    if arrive:
        b.brake_to(0.0, hard=False)


def _overtake(b: PlanBuilder, cruise: float) -> None:
    rng = b.rng
    lane_deg = _u(rng, 2, 5)
    b.bend(lane_deg, _u(rng, 1.5, 2.5))
    b.bend(-lane_deg, _u(rng, 1.5, 2.5), lane_change=True)
    b.speed_to(cruise + _kmh(_u(rng, 15, 30)), _u(rng, 0.15, 0.3) * G_M_S2, 0.8)
    b.hold(_u(rng, 4, 12))
    lane_deg = _u(rng, 2, 5)
    b.bend(-lane_deg, _u(rng, 1.5, 2.5))
    b.bend(lane_deg, _u(rng, 1.5, 2.5), lane_change=True)
    b.speed_to(cruise, 0.08 * G_M_S2, 1.0)


def _highway(b: PlanBuilder, until_s: float, arrive: bool) -> None:
    rng = b.rng
    b.set_style(RidingStyle.CITY)
    if b.v < _kmh(40):
        _pull_away(b, _kmh(_u(rng, 45, 55)), 0.25)
    else:
        b.brake_to(_kmh(_u(rng, 45, 55)), hard=False)
    b.hold(_u(rng, 3, 6))
    b.turn(_side(rng) * _u(rng, 90, 180), _u(rng, 25, 35), 1.0)  # on-ramp
    b.set_style(RidingStyle.HIGHWAY)
    cruise = _kmh(_u(rng, 110, 130))
    b.speed_to(cruise, _u(rng, 0.25, 0.35) * G_M_S2, 1.0)
    while b.t < until_s - 60.0:
        b.hold(_u(rng, 15, 60))
        x = rng.random()
        if x < 0.4:
            b.bend(_side(rng) * _u(rng, 5, 25), _u(rng, 15, 40))
        elif x < 0.75:
            _overtake(b, cruise)
        elif x < 0.9:  # traffic slows down
            b.brake_to(_kmh(_u(rng, 70, 95)), hard=rng.random() < 0.4)
            b.hold(_u(rng, 5, 20))
            b.speed_to(cruise, 0.2 * G_M_S2, 1.0)
        else:
            cruise = _kmh(_u(rng, 100, 130))
            b.speed_to(cruise, 0.12 * G_M_S2, 1.0)
    # Exit ramp.
    b.speed_to(_kmh(_u(rng, 70, 85)), 0.1 * G_M_S2, 1.0)
    b.brake_to(_kmh(_u(rng, 45, 60)), hard=False)
    b.set_style(RidingStyle.CITY)
    b.hold(2.0)
    b.turn(_side(rng) * _u(rng, 90, 200), _u(rng, 25, 35), 1.0)
    b.brake_to(_kmh(_u(rng, 30, 45)), hard=False)
    b.hold(_u(rng, 5, 15))
    if arrive:
        b.brake_to(0.0, hard=False)


def _circuit(rng: np.random.Generator) -> list[tuple[float, float, float, float]]:
    """Return corners: (signed angle deg, apex m/s, straight after m, lean deg)."""
    corners = []
    n = int(rng.integers(9, 15))
    main = int(rng.integers(n))
    for i in range(n):
        angle = _u(rng, 60, 175) * _side(rng, p_left=0.4)
        apex = _kmh(_u(rng, 55, 85) if abs(angle) > 120 else _u(rng, 80, 150))
        straight = _u(rng, 800, 1100) if i == main else _u(rng, 150, 900)
        corners.append((angle, apex, straight, _u(rng, 45, 55)))
    return corners


def _track_accelerate(b: PlanBuilder, v_top: float) -> None:
    for limit, accel_g in _TRACK_ACCEL_STAGES:
        target = min(limit, v_top)
        if b.v < target - 0.5:
            b.speed_to(target, accel_g * G_M_S2, 0.3)


def _track(b: PlanBuilder, until_s: float, arrive: bool) -> None:
    rng = b.rng
    b.set_style(RidingStyle.CITY)
    _pull_away(b, _kmh(60), 0.3)  # pit lane
    b.hold(_u(rng, 10, 20))
    b.set_style(RidingStyle.TRACK)
    corners = _circuit(rng)
    a_acc, a_brk = 0.5 * G_M_S2, 1.1 * G_M_S2
    done = False
    while not done:
        for i, (angle, apex, _, lean) in enumerate(corners):
            if b.v > apex:
                b.brake_to(apex, hard=True, peak_g=_u(rng, 1.0, 1.2))
            else:
                b.speed_to(apex, 0.3 * G_M_S2, 0.3)
            b.turn(angle, lean, _u(rng, 0.5, 0.7))
            straight = corners[i][2]
            v_next = corners[(i + 1) % len(corners)][1]
            top2 = (
                a_brk * apex**2 + a_acc * v_next**2 + 2 * a_acc * a_brk * straight
            ) / (a_acc + a_brk)
            v_top = min(_TRACK_TOP_M_S, max(math.sqrt(top2), max(apex, v_next) + 2.0))
            _track_accelerate(b, v_top)
            b.hold(_u(rng, 0.0, 1.0))
            if b.t >= until_s:
                done = True
                break
    # Cool-down and pit lane.
    b.set_style(RidingStyle.CITY)
    b.speed_to(_kmh(60), 0.25 * G_M_S2, 1.0)
    b.hold(_u(rng, 10, 20))
    if arrive:
        b.brake_to(0.0, hard=False)


def _rural(b: PlanBuilder, until_s: float, arrive: bool) -> None:
    rng = b.rng
    b.set_style(RidingStyle.RURAL)
    while b.t < until_s:
        _pull_away(b, _kmh(_u(rng, 60, 90)), _u(rng, 0.2, 0.4))
        b.hold(_u(rng, 4, 15))
        x = rng.random()
        if x < 0.45:  # sweeper
            b.brake_to(_kmh(_u(rng, 45, 75)), hard=rng.random() < 0.15)
            b.turn(_side(rng) * _u(rng, 60, 120), _u(rng, 25, 42), _u(rng, 0.7, 1.0))
        elif x < 0.6:  # hairpin
            b.brake_to(_kmh(_u(rng, 25, 35)), hard=rng.random() < 0.3)
            b.hold(0.5)
            b.turn(_side(rng) * _u(rng, 150, 180), _u(rng, 25, 38), 0.8)
        elif x < 0.9:
            b.bend(_side(rng) * _u(rng, 10, 25), _u(rng, 2.5, 5))
        else:  # through a village
            b.brake_to(_kmh(50), hard=False)
            b.hold(_u(rng, 20, 40))
    if arrive:
        b.brake_to(0.0, hard=False)


def _mixed(b: PlanBuilder, until_s: float, arrive: bool) -> None:
    start = b.t
    total = until_s - start
    _city(b, start + 0.2 * total, False)
    _rural(b, start + 0.5 * total, False)
    _highway(b, start + 0.85 * total, False)
    _city(b, until_s, arrive)
