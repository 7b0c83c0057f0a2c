"""Assemble the ride analytics document (schema ``ride-analytics/1``).

Field names and meanings are fixed by DESIGN.md, and the definitions are the
ones the synthesiser's truth files use (``firmware_bridge.synth.DEFINITIONS``).
A value the input cannot give is ``null``: distance and speeds without GNSS,
lean, accelerations and braking without orientation (streams under
``MIN_ORIENTATION_RATE_HZ``), ``start_utc``/``end_utc`` when the clock is not
wall-clock.

Lean, turns, accelerations and braking describe riding before any crash:
everything from ``PRE_IMPACT_S`` before the first detected impact on is left
out (a tumbling or lying rider is not leaning into a bend). When the GNSS
reports speed, lean, turns and acceleration extremes also leave out moments
slower than ``RIDING_MIN_SPEED_MPS`` or without a known speed: walking to and
from the bike, mounting and dismounting turn and sway, but do not ride (the
lean of a foot-down stop, a few degrees, is left out with them).
"""

from __future__ import annotations

import importlib.metadata
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from models.contract import MODEL_RATE_HZ

from .clean import QualityCounters
from .crash import CrashVerdict, utc_text
from .gnss import GnssTrack
from .motion import count_hard_braking, count_turns, extremes
from .samples import STANDARD_GRAVITY_MPS2, StreamInfo

__all__ = ["ANALYTICS_SCHEMA", "SOFTWARE_VERSION", "RideSeries", "build_analytics"]

ANALYTICS_SCHEMA = "ride-analytics/1"
# Control is lost up to about a second before the impact (a lowside falls
# for 0.35-0.6 s, a highside flies for up to 0.9 s after the flick).
PRE_IMPACT_S = 1.2
# Walking stays under 7 km/h, riding turns happen at 12 km/h or more; the
# shared definition (the synthesiser's truth) masks at 10 km/h.
RIDING_MIN_SPEED_MPS = 10.0 / 3.6
# At low rates turns come from the GNSS course, sampled at this rate.
COURSE_RATE_HZ = 1.0


def _software_version() -> str:
    try:
        return importlib.metadata.version("suitlink")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


SOFTWARE_VERSION = _software_version()

F32 = npt.NDArray[np.float32]


@dataclass(frozen=True)
class RideSeries:
    """Whole-ride 100 Hz series from orientation (empty without it)."""

    lean_deg: F32
    yaw_rate_rads: F32
    long_accel_mps2: F32
    speed_mps: F32


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(float(value), digits)


def _before_crash(
    length: int, rate_hz: float, verdict: CrashVerdict
) -> npt.NDArray[np.bool_]:
    """Return the mask of the samples before the first crash (all without)."""
    riding = np.ones(length, dtype=np.bool_)
    if verdict.events:
        first_impact_s = min(event.t_offset_s for event in verdict.events)
        riding[max(0, int((first_impact_s - PRE_IMPACT_S) * rate_hz)) :] = False
    return riding


def build_analytics(
    *,
    info: StreamInfo,
    rider_id: str,
    suit_id: str,
    samples: int,
    t_first_us: int,
    t_last_us: int,
    quality: QualityCounters,
    gnss: GnssTrack,
    series: RideSeries | None,
    verdict: CrashVerdict,
    model: dict[str, str] | None,
) -> dict[str, Any]:
    """Return the analytics document of one processed stream."""
    duration_s = (t_last_us - t_first_us) / 1e6
    start_utc = end_utc = None
    if info.start_utc_us is not None:
        offset = info.start_utc_us - info.clock_origin_us
        start_utc, end_utc = utc_text(t_first_us + offset), utc_text(t_last_us + offset)

    distance_m = gnss.distance_m(t_first_us, t_last_us)
    max_speed_mps = gnss.max_speed_mps()
    avg_speed_kmh = None
    if distance_m is not None and duration_s > 0:
        avg_speed_kmh = distance_m / duration_s * 3.6

    max_accel_g = max_decel_g = lean_left = lean_right = None
    braking = turns_left = turns_right = None
    if series is not None and len(series.lean_deg):
        before_crash = _before_crash(len(series.lean_deg), MODEL_RATE_HZ, verdict)
        moving = before_crash.copy()
        if gnss.has_speed:
            # Unknown speed (before the first fix, in a tunnel) is not riding.
            with np.errstate(invalid="ignore"):
                moving &= series.speed_mps >= RIDING_MIN_SPEED_MPS
        # float32 copies: a 3-hour series is 4.5 MB each (the smoothing sums
        # in float64 anyway).
        long_accel_g = series.long_accel_mps2 / np.float32(STANDARD_GRAVITY_MPS2)
        accel = extremes(long_accel_g, MODEL_RATE_HZ, moving)
        lean = extremes(series.lean_deg, MODEL_RATE_HZ, moving)
        if accel is not None:
            max_accel_g, max_decel_g = accel
        if lean is not None:
            lean_right, lean_left = lean
        braking = count_hard_braking(long_accel_g, MODEL_RATE_HZ, before_crash)
        del long_accel_g
        yaw_rate_dps = np.degrees(series.yaw_rate_rads)
        if moving.any():
            # The gyro's bias shows as a constant heading rate; most riding
            # is straight, so the median rate is the bias.
            yaw_rate_dps -= np.float32(np.median(yaw_rate_dps[moving]))
        turns_left, turns_right = count_turns(yaw_rate_dps, MODEL_RATE_HZ, moving)
    else:
        course = gnss.course_rate(COURSE_RATE_HZ, t_first_us)
        if course is not None:
            t_s, rate_dps = course
            before_crash = _before_crash(len(t_s), COURSE_RATE_HZ, verdict)
            turns_left, turns_right = count_turns(
                rate_dps, COURSE_RATE_HZ, before_crash
            )

    return {
        "schema": ANALYTICS_SCHEMA,
        "log_id": info.log_id,
        "suit_id": suit_id,
        "rider_id": rider_id,
        "start_utc": start_utc,
        "end_utc": end_utc,
        "duration_s": round(duration_s, 3),
        "samples": samples,
        "sample_rate_hz": round(info.sample_rate_hz, 3),
        "distance_km": _round(None if distance_m is None else distance_m / 1e3, 3),
        "avg_speed_kmh": _round(avg_speed_kmh, 2),
        "max_speed_kmh": _round(
            None if max_speed_mps is None else max_speed_mps * 3.6, 2
        ),
        "max_accel_g": _round(max_accel_g, 3),
        "max_decel_g": _round(max_decel_g, 3),
        "max_lean_left_deg": _round(lean_left, 2),
        "max_lean_right_deg": _round(lean_right, 2),
        "turns_left": turns_left,
        "turns_right": turns_right,
        "hard_braking_events": braking,
        "crash": verdict.as_dict(),
        "quality": quality.as_dict(),
        "model": model,
        "software_version": SOFTWARE_VERSION,
    }
