"""Walking and riding motion from a ``KinematicPlan``, vectorised per chunk.

On the bike the suit leans with the motorcycle in a coordinated turn: with
ground speed ``v`` and yaw rate ``r`` (positive left) the lean is
``-atan(v r / g)`` (positive = right), so the specific force stays in the
body's x-z plane with ``|f| = g / cos(lean)`` when the torso is upright; the
lean rate follows from the chain rule, ``d lean/dt = -cos^2(lean) (a r + v
dr/dt) / g``. Braking pitches the suit nose-down (fork dive, 2 degrees per
g). The gyroscope sees the Euler rates mapped into the body frame (see
``frames.body_rates``), so the yaw rate shows on body y and z when leaning.

On foot the torso does not lean into turns; the gait adds vertical bounce at
the step rate, fore-aft surge, lateral sway at half the step rate, and small
torso roll, pitch and twist. A slow sway of a fraction of a degree is always
present (nobody sits perfectly still).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from .constants import G_M_S2
from .frames import body_rates, euler_matrices, to_body
from .parts import PartSamples
from .planner import STYLES, GaitParams, KinematicPlan, Mode, RidingStyle
from .spec import Activity

__all__ = ["KinematicPart", "engine_rpm"]

F64 = npt.NDArray[np.float64]

# Fork dive and rider pitch under braking: nose-down radians per g.
_DIVE_RAD_PER_G = math.radians(2.0)
# Below this speed the suit counts as standing still.
_STILL_M_S = 0.05
# Walking speed at which the gait reaches its full amplitude.
_GAIT_FULL_M_S = 1.1
# Slow postural sway frequencies (Hz): breathing-rate and balance corrections.
_SWAY_HZ = (0.23, 0.61)

_STYLE_TABLE = np.array(
    [
        [STYLES[RidingStyle(k)].rpm_floor, STYLES[RidingStyle(k)].roughness_g]
        for k in range(len(RidingStyle))
    ]
)


@dataclass(frozen=True)
class KinematicPart:
    """A walking/riding stretch ``[t_start_s, t_end_s)`` of a ``KinematicPlan``."""

    plan: KinematicPlan
    t_start_s: float
    t_end_s: float

    def evaluate(self, t_s: F64) -> PartSamples:
        """Return the motion at ``t_s``."""
        return evaluate_plan(self.plan, t_s)


def _gait(
    t: F64, v: F64, a: F64, walk: npt.NDArray[np.bool_], gait: GaitParams
) -> dict[str, F64]:
    """Return gait accelerations (m/s^2, path frame) and torso angles and rates."""
    env = np.where(walk, np.clip(v / _GAIT_FULL_M_S, 0.0, 1.0), 0.0)
    env_rate = np.where(walk & (v > 0) & (v < _GAIT_FULL_M_S), a / _GAIT_FULL_M_S, 0.0)
    w = 2 * np.pi * gait.step_hz
    ph = w * t + gait.phase_rad
    half = ph / 2

    def angle(amp: float, arg: F64, arg_rate: float) -> tuple[F64, F64]:
        return env * amp * np.sin(arg), (
            env_rate * amp * np.sin(arg) + env * amp * arg_rate * np.cos(arg)
        )

    roll, roll_rate = angle(gait.roll_rad, half + np.pi / 2, w / 2)
    pitch, pitch_rate = angle(gait.pitch_rad, ph + 1.2, w)
    yaw, yaw_rate = angle(gait.yaw_rad, half + 0.3, w / 2)
    return {
        "up": env * gait.up_m_s2 * (np.sin(ph) + 0.3 * np.sin(2 * ph + 0.8)),
        "forward": env * gait.forward_m_s2 * np.sin(ph + 0.6),
        "lateral": env * gait.lateral_m_s2 * np.sin(half),
        "roll": roll,
        "roll_rate": roll_rate,
        "pitch": pitch,
        "pitch_rate": pitch_rate,
        "yaw": yaw,
        "yaw_rate": yaw_rate,
    }


def _sway(t: F64, gait: GaitParams) -> tuple[F64, F64, F64, F64]:
    """Return slow postural (roll, roll rate, pitch, pitch rate)."""
    p = gait.sway_phases_rad
    w1, w2 = 2 * np.pi * _SWAY_HZ[0], 2 * np.pi * _SWAY_HZ[1]
    amp = gait.sway_rad
    roll = amp * (np.sin(w1 * t + p[0]) + 0.6 * np.sin(w2 * t + p[1]))
    roll_rate = amp * (w1 * np.cos(w1 * t + p[0]) + 0.6 * w2 * np.cos(w2 * t + p[1]))
    pitch = 0.7 * amp * (np.sin(w1 * t + p[2]) + 0.6 * np.sin(w2 * t + p[3]))
    pitch_rate = (
        0.7 * amp * (w1 * np.cos(w1 * t + p[2]) + 0.6 * w2 * np.cos(w2 * t + p[3]))
    )
    return roll, roll_rate, pitch, pitch_rate


def engine_rpm(
    v: F64, rpm_floor: F64, running: npt.NDArray[np.bool_], plan: KinematicPlan
) -> F64:
    """Return engine speed: the highest gear keeping rpm above the floor."""
    bike = plan.bike
    gears = np.asarray(bike.gear_kmh_per_krpm)
    rpm_each = (v * 3.6)[:, None] / gears[None, :] * 1000.0
    usable = rpm_each >= rpm_floor[:, None]
    gear = np.maximum(usable.sum(axis=1) - 1, 0)
    rpm = rpm_each[np.arange(len(v)), gear]
    rpm = np.clip(rpm, bike.idle_rpm, bike.redline_rpm)
    return np.where(running, rpm, 0.0)


def evaluate_plan(plan: KinematicPlan, t: F64) -> PartSamples:
    """Return walking/riding motion of ``plan`` at times ``t``."""
    bike = plan.mode.at(t) == Mode.BIKE
    walk = ~bike

    # Path: speed and heading are exact integrals of the planned curves.
    a = plan.accel.value(t)
    a_rate = plan.accel.rate(t)
    v = np.maximum(plan.accel.integral(t), 0.0)
    r = plan.yaw_rate.value(t)
    r_rate = plan.yaw_rate.rate(t)
    heading = plan.heading0_rad + plan.yaw_rate.integral(t)

    # Coordinated lean and fork dive on the bike.
    lateral = v * r
    lean = np.where(bike, -np.arctan(lateral / G_M_S2), 0.0)
    lean_rate = np.where(
        bike, -(np.cos(lean) ** 2) * (a * r + v * r_rate) / G_M_S2, 0.0
    )
    dive = np.where(bike, -_DIVE_RAD_PER_G * a / G_M_S2, 0.0)
    dive_rate = np.where(bike, -_DIVE_RAD_PER_G * a_rate / G_M_S2, 0.0)

    # Posture, sway and gait on top.
    gait = _gait(t, v, a, walk, plan.gait)
    sway_roll, sway_roll_rate, sway_pitch, sway_pitch_rate = _sway(t, plan.gait)
    yaw = heading + gait["yaw"]
    yaw_rate = r + gait["yaw_rate"]
    pitch = plan.pitch_offset.value(t) + dive + sway_pitch + gait["pitch"]
    pitch_rate = (
        plan.pitch_offset.rate(t) + dive_rate + sway_pitch_rate + gait["pitch_rate"]
    )
    roll = lean + plan.roll_offset.value(t) + sway_roll + gait["roll"]
    roll_rate = (
        lean_rate + plan.roll_offset.rate(t) + sway_roll_rate + gait["roll_rate"]
    )
    r_bw = euler_matrices(yaw, pitch, roll)

    # Specific force: path-frame acceleration turned into the world, plus 1 g up.
    along = a + gait["forward"]
    across = lateral + gait["lateral"]
    c, s = np.cos(heading), np.sin(heading)
    f_world = (
        np.stack(
            [
                c * along - s * across,
                s * along + c * across,
                plan.vertical.value(t) + gait["up"] + G_M_S2,
            ],
            axis=-1,
        )
        / G_M_S2
    )

    moving = v > _STILL_M_S
    activity = np.where(
        bike,
        np.where(moving, Activity.RIDING, Activity.STOPPED),
        np.where(moving, Activity.WALKING, Activity.STANDING),
    )
    override = plan.activity_override.at(t)
    activity = np.where(override >= 0, override, activity).astype(np.uint8)

    style = _STYLE_TABLE[plan.style.at(t)]
    running = bike & (plan.engine_on.at(t) == 1)
    roughness = np.where(bike, style[:, 1], 0.0) * np.minimum((v / 20.0) ** 0.8, 1.6)
    return PartSamples(
        f_body_g=to_body(r_bw, f_world),
        omega_rad_s=body_rates(yaw_rate, pitch, pitch_rate, roll, roll_rate),
        body_to_world=r_bw,
        speed_m_s=v,
        travel_heading_rad=heading,
        long_accel_m_s2=np.where(bike, a, 0.0),
        yaw_rate_rad_s=r,
        roll_rad=roll,
        on_bike=bike,
        activity=activity,
        engine_rpm=engine_rpm(v, style[:, 0], running, plan),
        road_roughness_g=roughness,
    )
