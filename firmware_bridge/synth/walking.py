"""On foot: walking to and from the bike, standing, getting on and off.

Walking is a sequence of short walks (1.2-1.6 m/s) with turns on foot and
pauses; the gait itself (step bounce, sway) is added by ``kinematics`` from
the walking speed. Getting on the bike is a few seconds of leg swing: the
torso leans to one side, pitches forward and steps up.
"""

from __future__ import annotations

import math

from .planner import Mode, PlanBuilder, RidingStyle
from .spec import Activity

__all__ = ["dismount", "mount", "walk_about"]

# Walking acceleration and ramp: from standing to walking pace in about 1.5 s.
_WALK_ACCEL_M_S2 = 0.9
_WALK_RAMP_S = 0.4
# A walk shorter than this is just standing about.
_MIN_WALK_S = 6.0


def walk_about(b: PlanBuilder, duration_s: float, pace: float = 1.0) -> None:
    """Walk, turn and pause for ``duration_s``, ending at a standstill."""
    rng = b.rng
    end = b.t + duration_s
    b.hold(min(float(rng.uniform(2.0, 5.0)), duration_s))
    while end - b.t > _MIN_WALK_S:
        b.speed_to(pace * float(rng.uniform(1.2, 1.6)), _WALK_ACCEL_M_S2, _WALK_RAMP_S)
        walk_s = min(float(rng.uniform(4.0, 14.0)), end - b.t - 3.0)
        if walk_s > 4.0 and rng.random() < 0.6:
            first_s = walk_s * float(rng.uniform(0.3, 0.6))
            b.hold(first_s)
            turn_start = b.t
            sign = 1.0 if rng.random() < 0.5 else -1.0
            b.walk_turn(
                sign * float(rng.uniform(30.0, 180.0)), float(rng.uniform(60, 120))
            )
            b.hold(walk_s - first_s - (b.t - turn_start))
        else:
            b.hold(walk_s)
        b.speed_to(0.0, _WALK_ACCEL_M_S2 * 1.2, _WALK_RAMP_S)
        b.hold(min(float(rng.uniform(1.0, 4.0)), max(0.0, end - b.t)))
    b.hold(end - b.t)


def mount(b: PlanBuilder, riding_pitch_rad: float) -> None:
    """Get on the bike (3-4.5 s of leg swing); the body model becomes BIKE."""
    rng = b.rng
    duration_s = float(rng.uniform(3.0, 4.5))
    side = 1.0 if rng.random() < 0.7 else -1.0
    b.set_activity(Activity.MOUNTING)
    b.roll_to(side * math.radians(rng.uniform(6.0, 10.0)), 0.35 * duration_s)
    b.roll_to(0.0, 0.35 * duration_s)
    b.pitch_to(math.radians(rng.uniform(20.0, 30.0)), 0.45 * duration_s)
    b.pitch_to(riding_pitch_rad, 0.45 * duration_s)
    b.vertical_to(2.0, 0.15 * duration_s)
    b.vertical_to(-2.0, 0.2 * duration_s)
    b.vertical_to(0.0, 0.15 * duration_s)
    b.hold(0.2 * duration_s)
    b.walk_turn(-side * float(rng.uniform(10.0, 30.0)), 40.0)
    b.t = max(b.t, b.posture_end_s())
    b.set_activity(None)
    b.set_mode(Mode.BIKE)


def dismount(b: PlanBuilder) -> None:
    """Get off the stopped bike (3-4 s); the body model becomes WALK."""
    rng = b.rng
    duration_s = float(rng.uniform(3.0, 4.0))
    side = 1.0 if rng.random() < 0.7 else -1.0
    b.set_mode(Mode.WALK)
    b.set_style(RidingStyle.WALK, posture_s=0.5 * duration_s)
    b.set_activity(Activity.MOUNTING)
    b.roll_to(side * math.radians(rng.uniform(6.0, 10.0)), 0.35 * duration_s)
    b.roll_to(0.0, 0.35 * duration_s)
    b.vertical_to(-1.5, 0.2 * duration_s)
    b.vertical_to(1.5, 0.2 * duration_s)
    b.vertical_to(0.0, 0.2 * duration_s)
    b.hold(0.3 * duration_s)
    b.walk_turn(side * float(rng.uniform(20.0, 60.0)), 50.0)
    b.t = max(b.t, b.posture_end_s())
    b.set_activity(None)
