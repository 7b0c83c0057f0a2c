"""Build a ride's motion plan: speed, yaw rate and posture knots in time order.

A ``PlanBuilder`` keeps a cursor (``t``) and the current speed. Each step
appends knots: ``speed_to`` ramps the longitudinal acceleration up, holds it
and ramps it down so the speed lands exactly on the target; ``yaw_manoeuvre``
does the same with the yaw rate so the heading change is exact. Every riding
manoeuvre is recorded (start, end, heading change) for the truth file.

Rules the builder enforces so the truth is unambiguous for an estimator:

- a riding turn changes heading by >= 60 degrees, a bend by <= 25 degrees;
- any two yaw manoeuvres are >= 4 s apart (lane changes excepted: two bends
  of <= 10 degrees and opposite sign may be 1 s apart);
- braking is either hard (above 0.4 g for >= 0.8 s) or soft (<= 0.3 g peak).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import IntEnum

import numpy as np

from .constants import G_M_S2
from .curves import EasedCurve, KnotList, StepFunction
from .spec import Activity

__all__ = [
    "STYLES",
    "BikeParams",
    "GaitParams",
    "KinematicPlan",
    "Manoeuvre",
    "Mode",
    "PlanBuilder",
    "RidingStyle",
    "Style",
]

# Shared definitions (truth files and ride analytics use the same numbers).
TURN_MIN_DEG = 60.0  # every planned turn is at least this
BEND_MAX_DEG = 25.0  # every planned bend is at most this
MANOEUVRE_GAP_S = 4.0  # straight riding between two yaw manoeuvres
LANE_CHANGE_MAX_DEG = 10.0  # bends this small may pair up 1 s apart
HARD_BRAKING_G = 0.4
# A hard stop stays above HARD_BRAKING_G this long: well clear of the 0.5 s
# definition, so sample noise cannot make it ambiguous.
HARD_BRAKING_MIN_ABOVE_S = 0.8
SOFT_BRAKING_MAX_G = 0.28
# Riding turns happen at 12 km/h or more (a u-turn); walking is below 7 km/h.
MIN_TURN_SPEED_M_S = 3.3
# Torso pitch while walking and standing (slight forward lean).
WALK_PITCH_RAD = math.radians(3.0)


class Mode(IntEnum):
    """Which body model drives the suit."""

    WALK = 0  # on foot: gait, no lean into turns
    BIKE = 1  # on the bike: coordinated lean, fork dive, engine


class RidingStyle(IntEnum):
    """Kind of road, for engine use, road roughness, bumps and posture."""

    WALK = 0
    CITY = 1
    RURAL = 2
    HIGHWAY = 3
    TRACK = 4


@dataclass(frozen=True)
class Style:
    """Per-road-kind parameters."""

    rpm_floor: float  # shift up while the next gear keeps the engine above this
    roughness_g: float  # road vibration at 72 km/h
    bumps_per_km: float  # manhole covers, joints, potholes
    pitch_deg: float  # rider's torso forward lean


STYLES = {
    RidingStyle.WALK: Style(0.0, 0.0, 0.0, 3.0),
    RidingStyle.CITY: Style(2600.0, 0.06, 3.0, 6.0),
    RidingStyle.RURAL: Style(3200.0, 0.05, 1.0, 9.0),
    RidingStyle.HIGHWAY: Style(3000.0, 0.035, 0.4, 10.0),
    RidingStyle.TRACK: Style(7500.0, 0.025, 0.1, 16.0),
}


@dataclass(frozen=True)
class Manoeuvre:
    """One yaw manoeuvre: when, how far (radians, positive left) and what."""

    t_start_s: float
    t_end_s: float
    angle_rad: float
    kind: str  # "turn", "bend" or "walk_turn"


@dataclass(frozen=True)
class GaitParams:
    """Walking and standing body motion of this rider."""

    step_hz: float
    phase_rad: float
    up_m_s2: float
    forward_m_s2: float
    lateral_m_s2: float
    roll_rad: float
    pitch_rad: float
    yaw_rad: float
    sway_rad: float
    sway_phases_rad: tuple[float, float, float, float]

    @staticmethod
    def draw(rng: np.random.Generator) -> GaitParams:
        """Draw a rider's gait (step rate about 1.8 Hz, torso bounce ~0.25 g)."""
        k = rng.uniform(0.85, 1.15, size=6)
        phases = rng.uniform(0, 2 * np.pi, size=4)
        return GaitParams(
            step_hz=float(rng.uniform(1.65, 1.95)),
            phase_rad=float(rng.uniform(0, 2 * np.pi)),
            up_m_s2=2.4 * k[0],
            forward_m_s2=1.1 * k[1],
            lateral_m_s2=0.6 * k[2],
            roll_rad=math.radians(2.0) * k[3],
            pitch_rad=math.radians(1.5) * k[4],
            yaw_rad=math.radians(3.0) * k[5],
            sway_rad=math.radians(0.4),
            sway_phases_rad=(
                float(phases[0]),
                float(phases[1]),
                float(phases[2]),
                float(phases[3]),
            ),
        )


@dataclass(frozen=True)
class BikeParams:
    """The motorcycle: gearing and engine."""

    gear_kmh_per_krpm: tuple[float, ...]
    idle_rpm: float
    redline_rpm: float
    twin: bool  # a twin shakes at engine order 1, a four at order 2

    @staticmethod
    def draw(rng: np.random.Generator) -> BikeParams:
        """Draw a bike: six gears, idle about 1200 rpm."""
        twin = bool(rng.random() < 0.6)
        scale = rng.uniform(0.9, 1.1)
        gears = tuple(scale * g for g in (9.0, 13.0, 16.5, 19.5, 22.0, 24.5))
        return BikeParams(
            gear_kmh_per_krpm=gears,
            idle_rpm=float(rng.uniform(1100, 1300)),
            redline_rpm=9500.0 if twin else 12500.0,
            twin=twin,
        )


@dataclass(frozen=True)
class KinematicPlan:
    """Everything needed to evaluate walking and riding motion at any time."""

    t_start_s: float
    t_end_s: float
    heading0_rad: float
    accel: EasedCurve  # longitudinal, m/s^2 (speed is its integral)
    yaw_rate: EasedCurve  # rad/s, positive left (heading is its integral)
    roll_offset: EasedCurve  # rad, posture on top of the lean into turns
    pitch_offset: EasedCurve  # rad, posture (nose-down positive)
    vertical: EasedCurve  # m/s^2, stepping up and down
    mode: StepFunction
    activity_override: StepFunction  # -1: derive from mode and speed
    engine_on: StepFunction
    style: StepFunction
    manoeuvres: tuple[Manoeuvre, ...]
    gait: GaitParams
    bike: BikeParams
    ride_start_s: float | None
    ride_end_s: float | None


class PlanBuilder:
    """Append walking and riding steps in time order (see module docstring)."""

    def __init__(
        self,
        rng: np.random.Generator,
        t0_s: float,
        heading0_rad: float,
        gait: GaitParams,
        bike: BikeParams,
    ) -> None:
        self.rng = rng
        self.t = t0_s
        self.v = 0.0
        self.heading0_rad = heading0_rad
        self.gait = gait
        self.bike = bike
        self._t0 = t0_s
        self._accel = KnotList(t0_s)
        self._yaw = KnotList(t0_s)
        self._roll = KnotList(t0_s)
        self._pitch = KnotList(t0_s, WALK_PITCH_RAD)
        self._vertical = KnotList(t0_s)
        self._steps: dict[str, tuple[list[float], list[int]]] = {
            "mode": ([t0_s], [Mode.WALK]),
            "activity": ([t0_s], [-1]),
            "engine": ([t0_s], [0]),
            "style": ([t0_s], [RidingStyle.WALK]),
        }
        self.manoeuvres: list[Manoeuvre] = []
        self._last_yaw_end_s = -math.inf
        self._last_yaw_angle = 0.0
        self.mode = Mode.WALK
        self.ride_start_s: float | None = None
        self.ride_end_s: float | None = None

    # Steps that change codes at the cursor.

    def _step(self, name: str, code: int) -> None:
        times, codes = self._steps[name]
        if times[-1] == self.t:
            codes[-1] = code
        else:
            times.append(self.t)
            codes.append(code)

    def set_mode(self, mode: Mode) -> None:
        """Switch the body model at the cursor."""
        self.mode = mode
        self._step("mode", mode)

    def set_activity(self, activity: Activity | None) -> None:
        """Force an activity label from the cursor on (None: derive it)."""
        self._step("activity", -1 if activity is None else int(activity))

    def set_engine(self, on: bool) -> None:
        """Start or stop the engine at the cursor."""
        self._step("engine", int(on))

    def set_style(self, style: RidingStyle, posture_s: float = 2.0) -> None:
        """Switch road kind; the rider settles into its posture over posture_s."""
        self._step("style", style)
        self.pitch_to(math.radians(STYLES[style].pitch_deg), posture_s)

    # Motion.

    def hold(self, duration_s: float) -> None:
        """Advance the cursor, keeping speed and heading rate."""
        self.t += max(0.0, duration_s)

    def speed_to(self, v_target: float, accel_m_s2: float, ramp_s: float) -> None:
        """Change speed to ``v_target`` with an acceleration plateau."""
        dv = v_target - self.v
        if abs(dv) < 1e-9:
            return
        a = abs(accel_m_s2)
        if abs(dv) <= a * ramp_s:
            a, hold_s = abs(dv) / ramp_s, 0.0
        else:
            hold_s = abs(dv) / a - ramp_s
        a = math.copysign(a, dv)
        t0 = self.t
        self._accel.add(t0, 0.0)
        self._accel.add(t0 + ramp_s, a)
        self._accel.add(t0 + ramp_s + hold_s, a)
        self._accel.add(t0 + 2 * ramp_s + hold_s, 0.0)
        self.t = t0 + 2 * ramp_s + hold_s
        self.v = v_target

    def brake_to(
        self, v_target: float, hard: bool, peak_g: float | None = None
    ) -> bool:
        """Brake to ``v_target``; return whether it was a hard braking event.

        A hard stop that could not stay above the hard-braking threshold long
        enough (the speed drop is too small) is made a soft one instead.
        """
        dv = self.v - v_target
        if dv <= 0:
            return False
        if hard:
            a = (peak_g or self.rng.uniform(0.55, 0.75)) * G_M_S2
            ramp_s = float(self.rng.uniform(0.2, 0.35))
            if _time_above_s(dv, a, ramp_s, HARD_BRAKING_G * G_M_S2) >= (
                HARD_BRAKING_MIN_ABOVE_S
            ):
                self.speed_to(v_target, a, ramp_s)
                return True
        a = self.rng.uniform(0.12, SOFT_BRAKING_MAX_G) * G_M_S2
        self.speed_to(v_target, a, float(self.rng.uniform(0.5, 0.9)))
        return False

    def yaw_manoeuvre(
        self,
        angle_rad: float,
        peak_rate_rad_s: float,
        ramp_s: float,
        kind: str,
        min_gap_s: float = MANOEUVRE_GAP_S,
    ) -> None:
        """Change heading by ``angle_rad`` (positive left) at up to the peak rate."""
        gap = self.t - self._last_yaw_end_s
        if gap < min_gap_s:
            self.hold(min_gap_s - gap)
        rate = abs(peak_rate_rad_s)
        if abs(angle_rad) <= rate * ramp_s:
            rate, hold_s = abs(angle_rad) / ramp_s, 0.0
        else:
            hold_s = abs(angle_rad) / rate - ramp_s
        rate = math.copysign(rate, angle_rad)
        t0 = self.t
        t1 = t0 + 2 * ramp_s + hold_s
        self._yaw.add(t0, 0.0)
        self._yaw.add(t0 + ramp_s, rate)
        self._yaw.add(t0 + ramp_s + hold_s, rate)
        self._yaw.add(t1, 0.0)
        self.manoeuvres.append(Manoeuvre(t0, t1, angle_rad, kind))
        self.t = t1
        self._last_yaw_end_s = t1
        self._last_yaw_angle = angle_rad

    def turn(self, angle_deg: float, lean_deg: float, ramp_s: float) -> None:
        """Ride a turn (>= 60 degrees) at the current speed with a target lean."""
        if abs(angle_deg) < TURN_MIN_DEG:
            raise ValueError(f"a turn needs >= {TURN_MIN_DEG} degrees, got {angle_deg}")
        if self.v < MIN_TURN_SPEED_M_S:
            raise ValueError(f"turn at {self.v:.2f} m/s, below {MIN_TURN_SPEED_M_S}")
        peak = G_M_S2 * math.tan(math.radians(lean_deg)) / self.v
        self.yaw_manoeuvre(math.radians(angle_deg), peak, ramp_s, "turn")

    def bend(
        self, angle_deg: float, duration_s: float, lane_change: bool = False
    ) -> None:
        """Ride a gentle bend (<= 25 degrees) lasting about ``duration_s``."""
        if abs(angle_deg) > BEND_MAX_DEG:
            raise ValueError(f"a bend is <= {BEND_MAX_DEG} degrees, got {angle_deg}")
        gap = MANOEUVRE_GAP_S
        if (
            lane_change
            and abs(angle_deg) <= LANE_CHANGE_MAX_DEG
            and abs(self._last_yaw_angle) <= math.radians(LANE_CHANGE_MAX_DEG)
            and angle_deg * self._last_yaw_angle < 0
        ):
            gap = 1.0
        ramp_s = duration_s / 3.0
        peak = math.radians(abs(angle_deg)) / (2.0 * ramp_s)
        self.yaw_manoeuvre(math.radians(angle_deg), peak, ramp_s, "bend", gap)

    def walk_turn(self, angle_deg: float, peak_dps: float) -> None:
        """Turn on foot (not a riding manoeuvre)."""
        self.yaw_manoeuvre(
            math.radians(angle_deg), math.radians(peak_dps), 0.3, "walk_turn", 1.0
        )

    # Posture ramps: they start at the cursor (or when the previous ramp of the
    # same curve ends) and do not move the cursor.

    def _ramp(self, knots: KnotList, target: float, duration_s: float) -> float:
        start = max(self.t, knots.last_t_s)
        knots.add(start, knots.last_y)
        knots.add(start + duration_s, target)
        return start + duration_s

    def roll_to(self, target_rad: float, duration_s: float) -> float:
        """Ease the posture roll to ``target_rad``; return when it arrives."""
        return self._ramp(self._roll, target_rad, duration_s)

    def pitch_to(self, target_rad: float, duration_s: float) -> float:
        """Ease the posture pitch to ``target_rad``; return when it arrives."""
        return self._ramp(self._pitch, target_rad, duration_s)

    def vertical_to(self, target_m_s2: float, duration_s: float) -> float:
        """Ease the vertical acceleration to ``target_m_s2``; return the end."""
        return self._ramp(self._vertical, target_m_s2, duration_s)

    def posture_end_s(self) -> float:
        """Return when the last posture ramp (roll, pitch, vertical) ends."""
        return max(self._roll.last_t_s, self._pitch.last_t_s, self._vertical.last_t_s)

    def build(self) -> KinematicPlan:
        """Freeze the plan; it ends at the cursor."""

        def steps(name: str) -> StepFunction:
            return StepFunction(*self._steps[name])

        return KinematicPlan(
            t_start_s=self._t0,
            t_end_s=self.t,
            heading0_rad=self.heading0_rad,
            accel=self._accel.curve(),
            yaw_rate=self._yaw.curve(),
            roll_offset=self._roll.curve(),
            pitch_offset=self._pitch.curve(),
            vertical=self._vertical.curve(),
            mode=steps("mode"),
            activity_override=steps("activity"),
            engine_on=steps("engine"),
            style=steps("style"),
            manoeuvres=tuple(self.manoeuvres),
            gait=self.gait,
            bike=self.bike,
            ride_start_s=self.ride_start_s,
            ride_end_s=self.ride_end_s,
        )


def _time_above_s(dv: float, a: float, ramp_s: float, threshold: float) -> float:
    """Return how long a ``speed_to`` deceleration stays above ``threshold``."""
    if dv <= a * ramp_s:
        a, hold_s = dv / ramp_s, 0.0
    else:
        hold_s = dv / a - ramp_s
    if a <= threshold:
        return 0.0
    u = math.acos(1.0 - 2.0 * threshold / a) / math.pi
    return hold_s + 2.0 * ramp_s * (1.0 - u)
