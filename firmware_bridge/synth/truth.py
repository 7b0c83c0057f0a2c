"""The true ride analytics of a synthetic ride (``<log>.truth.json``).

The fields mirror ``ride-analytics/1`` (DESIGN.md) with their true values,
computed from the noise-free motion sample by sample while the log is
written; ``DEFINITIONS`` says how each is defined, and the ride analytics use
the same definitions. Extra fields: the crash's onset, airbag and rest times,
record counts and the spec that made the ride.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from .chunks import SynthChunk
from .constants import G_M_S2
from .planner import HARD_BRAKING_G
from .ride import RidePlan

__all__ = [
    "DEFINITIONS",
    "TRUTH_SCHEMA",
    "CrashEventTruth",
    "RideTruth",
    "TruthAccumulator",
    "truth_path",
]

TRUTH_SCHEMA = "ride-truth/1"
# Turns are counted from this heading change (degrees).
TURN_COUNT_DEG = 45.0
# A hard braking event lasts at least this long above HARD_BRAKING_G.
HARD_BRAKING_MIN_S = 0.5
# Lean extremes count from this ground speed: above walking pace and the
# roll of getting on the bike or a foot-down stop, below every planned turn.
LEAN_MIN_SPEED_M_S = 10.0 / 3.6

DEFINITIONS: dict[str, str] = {
    "time": "t = sample index / sample_rate_hz: seconds since the first sample",
    "g": f"standard gravity, {G_M_S2} m/s^2",
    "body_frame": "suit frame: x forward, y left, z up (FLU), right-handed",
    "duration_s": "time of the last sample minus time of the first sample",
    "samples": "number of IMU samples in the log",
    "ground_speed": "true speed of the suit over ground: the planned (smooth) "
    "walking, riding and crash-slide speed; gait oscillation, vibration and "
    "GNSS noise excluded",
    "distance_km": "trapezoid integral of the ground speed over all samples "
    "(walking, riding and crash slide included)",
    "avg_speed_kmh": "distance_km / duration_s (walking, stops, lying included)",
    "max_speed_kmh": "largest ground speed over the whole log",
    "max_accel_g": "largest longitudinal acceleration of the vehicle (derivative "
    "of the riding speed; vibration, gait and crash excluded) over samples on "
    "the bike before any crash; null when never on the bike",
    "max_decel_g": "largest longitudinal deceleration, as a positive number, "
    "over the same samples",
    "lean": "roll of the suit relative to gravity: the roll angle of the Z-Y-X "
    "(yaw, pitch, roll) Euler decomposition of the suit's body-to-world "
    "rotation; positive = leaning right. In a coordinated turn at speed v and "
    "yaw rate r (positive left) the bike's lean is -atan(v r / g)",
    "max_lean_left_deg": "largest lean to the left (positive number) over "
    "samples on the bike at a ground speed of at least 10 km/h, before any "
    "crash (getting on and off, foot-down stops and walking excluded); null "
    "when never riding that fast",
    "max_lean_right_deg": "largest lean to the right over the same samples",
    "turn": "one continuous riding manoeuvre (yaw rate of one sign between "
    "straight stretches, ridden at >= 12 km/h) whose heading change is at least 45 "
    "degrees. Every planned manoeuvre is >= 60 or <= 25 degrees and starts "
    ">= 4 s after the previous one ends (except lane changes: two <= 10 degree "
    "bends of opposite sign, >= 1 s apart); u-turns and roundabouts are one "
    "turn. Walking turns (on foot, below 7 km/h, up to 180 degrees) are not "
    "counted: a speed mask of >= 10 km/h separates them. A turn cut short by a "
    "crash counts "
    "if its heading change before the crash onset reached 45 degrees",
    "turns_left": "turns with a positive (counter-clockwise from above) heading change",
    "turns_right": "turns with a negative heading change",
    "hard_braking_events": "maximal runs of consecutive on-bike samples with "
    "longitudinal deceleration above 0.4 g lasting at least 0.5 s (run length "
    "/ sample rate). Planned braking is either >= 0.8 s above 0.4 g or peaks "
    "at <= 0.28 g",
    "crash.detected": "true when the ride contains a crash",
    "crash.events[].t_offset_s": "the impact: the sample with the largest true "
    "specific-force magnitude between crash onset and coming to rest, seconds "
    "since the first sample",
    "crash.events[].peak_g": "that magnitude, before the accelerometer clips "
    "it at its full scale",
    "crash.events[].onset_offset_s": "when control was lost (seconds since the "
    "first sample)",
    "crash.events[].airbag_offset_s": "time of the AIRBAG_DEPLOYED event "
    "record (30-80 ms after onset)",
    "crash.events[].rest_offset_s": "when the rider stopped sliding",
    "start_utc": "wall-clock time of the first sample (ISO 8601, UTC); null "
    "when the suit clock was unset",
    "end_utc": "start_utc + duration_s; null when start_utc is null",
    "quality.saturated_samples": "samples with any accelerometer or gyroscope "
    "axis at an int16 limit (-32768 or 32767)",
    "quality.counter_wraps": "times the u32 microsecond counter decreases "
    "between consecutive samples (wraps past 2^32)",
}


def _rounded(value: float, digits: int) -> float | None:
    """Return ``value`` rounded, or None when nothing was folded in."""
    return round(value, digits) if math.isfinite(value) else None


def truth_path(log_path: str | os.PathLike[str]) -> Path:
    """Return where the truth of ``log_path`` is written: ``<log>.truth.json``."""
    return Path(str(log_path) + ".truth.json")


def _iso(t: datetime | None) -> str | None:
    if t is None:
        return None
    return t.isoformat(timespec="microseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class CrashEventTruth:
    """One crash: its kind, impact, and the moments around it."""

    kind: str
    t_offset_s: float
    t_utc: str | None
    peak_g: float
    onset_offset_s: float
    airbag_offset_s: float
    rest_offset_s: float


@dataclass(frozen=True)
class RideTruth:
    """True values of the ``ride-analytics/1`` fields (see ``DEFINITIONS``)."""

    log_id: str
    suit_id: str
    start_utc: str | None
    end_utc: str | None
    duration_s: float
    samples: int
    sample_rate_hz: float
    distance_km: float
    avg_speed_kmh: float
    max_speed_kmh: float
    max_accel_g: float | None
    max_decel_g: float | None
    max_lean_left_deg: float | None
    max_lean_right_deg: float | None
    turns_left: int
    turns_right: int
    hard_braking_events: int
    crash_detected: bool
    crash_events: tuple[CrashEventTruth, ...]
    saturated_samples: int
    counter_wraps: int
    gnss_records: int
    event_records: int
    spec: dict[str, Any]

    @property
    def crash_impact_s(self) -> tuple[float, ...]:
        """Return impact times in seconds since the first sample."""
        return tuple(e.t_offset_s for e in self.crash_events)

    def to_json_dict(self) -> dict[str, Any]:
        """Return the truth document (``ride-truth/1``)."""
        doc = asdict(self)
        crash = {
            "detected": doc.pop("crash_detected"),
            "events": doc.pop("crash_events"),
        }
        quality = {
            "duplicates": 0,
            "gaps": 0,
            "out_of_order": 0,
            "saturated_samples": doc.pop("saturated_samples"),
            "counter_wraps": doc.pop("counter_wraps"),
            "rejected_rows": 0,
        }
        spec = doc.pop("spec")
        return {
            "schema": TRUTH_SCHEMA,
            "truth_for": "ride-analytics/1",
            "rider_id": None,
            **doc,
            "crash": crash,
            "quality": quality,
            "spec": spec,
            "definitions": DEFINITIONS,
        }

    def write_json(self, path: str | os.PathLike[str]) -> None:
        """Write the truth document atomically (temporary file, then rename)."""
        target = Path(path)
        partial = target.with_name(target.name + ".partial")
        partial.write_text(json.dumps(self.to_json_dict(), indent=2) + "\n")
        os.replace(partial, target)


def _spec_dict(plan: RidePlan) -> dict[str, Any]:
    doc = asdict(plan.spec)
    if plan.spec.start_utc is not None:
        doc["start_utc"] = _iso(plan.spec.start_utc)
    return doc


class TruthAccumulator:
    """Fold chunks into a ``RideTruth`` (bounded memory, any ride length)."""

    def __init__(self, plan: RidePlan) -> None:
        self.plan = plan
        self.rate_hz = plan.spec.sample_rate_hz
        self.samples = 0
        self.distance_m = 0.0
        self.max_speed = 0.0
        self.max_accel = -math.inf
        self.max_decel = -math.inf
        self.lean_right = -math.inf
        self.lean_left = -math.inf
        self.hard_brakes = 0
        self._brake_run = 0
        self._min_run = math.ceil(HARD_BRAKING_MIN_S * self.rate_hz - 1e-9)
        self.saturated = 0
        self.wraps = 0
        self._prev_t_us: int | None = None
        self.gnss_records = 0
        self.event_records = 0

    def _braking(self, braking: np.ndarray) -> None:
        edges = np.flatnonzero(
            np.diff(np.concatenate([[0], braking.astype(np.int8), [0]]))
        )
        starts, ends = edges[0::2], edges[1::2]
        lengths = ends - starts
        if self._brake_run and (len(starts) == 0 or starts[0] != 0):
            self.hard_brakes += self._brake_run >= self._min_run
            self._brake_run = 0
        if len(lengths) and starts[0] == 0:
            lengths[0] += self._brake_run
            self._brake_run = 0
        if len(lengths) and ends[-1] == len(braking):
            self._brake_run = int(lengths[-1])
            lengths = lengths[:-1]
        self.hard_brakes += int(np.sum(lengths >= self._min_run))

    def add(self, chunk: SynthChunk) -> None:
        """Fold one chunk in (chunks must come in order)."""
        truth = chunk.truth
        self.samples += len(chunk)
        self.distance_m = float(truth.distance_m[-1])
        self.max_speed = max(self.max_speed, float(truth.speed_m_s.max()))
        bike = truth.on_bike
        if bike.any():
            accel = truth.long_accel_g[bike]
            self.max_accel = max(self.max_accel, float(accel.max()))
            self.max_decel = max(self.max_decel, float(-accel.min()))
        riding = bike & (truth.speed_m_s >= LEAN_MIN_SPEED_M_S)
        if riding.any():
            lean = truth.lean_deg[riding]
            self.lean_right = max(self.lean_right, float(lean.max()))
            self.lean_left = max(self.lean_left, float(-lean.min()))
        self._braking(bike & (truth.long_accel_g < -HARD_BRAKING_G))

        limits = (chunk.acc_raw == -32768) | (chunk.acc_raw == 32767)
        limits |= (chunk.gyr_raw == -32768) | (chunk.gyr_raw == 32767)
        self.saturated += int(np.count_nonzero(limits.any(axis=1)))
        t_us = chunk.t_us.astype(np.int64)
        if self._prev_t_us is not None:
            t_us = np.concatenate([[self._prev_t_us], t_us])
        self.wraps += int(np.count_nonzero(np.diff(t_us) < 0))
        self._prev_t_us = int(t_us[-1])
        self.gnss_records += len(chunk.gnss)
        self.event_records += len(chunk.events)

    def finish(self) -> RideTruth:
        """Return the ride's truth once every chunk has been added."""
        plan = self.plan
        self._braking(np.zeros(1, dtype=bool))
        duration_s = (self.samples - 1) / self.rate_hz
        start = plan.header.start_utc
        end = None if start is None else start + timedelta(seconds=duration_s)
        turns_left = sum(
            1 for a in plan.riding_turns_rad if math.degrees(a) >= TURN_COUNT_DEG
        )
        turns_right = sum(
            1 for a in plan.riding_turns_rad if math.degrees(a) <= -TURN_COUNT_DEG
        )
        events: tuple[CrashEventTruth, ...] = ()
        if plan.crash is not None:
            c = plan.crash
            t_utc = None if start is None else start + timedelta(seconds=c.impact_s)
            events = (
                CrashEventTruth(
                    kind=c.kind,
                    t_offset_s=round(c.impact_s, 6),
                    t_utc=_iso(t_utc),
                    peak_g=round(c.peak_g, 3),
                    onset_offset_s=round(c.onset_s, 6),
                    airbag_offset_s=round(c.airbag_s, 6),
                    rest_offset_s=round(c.rest_s, 6),
                ),
            )
        on_bike = self.max_accel > -math.inf

        def bike_value(value: float, digits: int) -> float | None:
            return round(value, digits) if on_bike else None

        return RideTruth(
            log_id=plan.header.log_id,
            suit_id=plan.header.suit_serial,
            start_utc=_iso(start),
            end_utc=_iso(end),
            duration_s=round(duration_s, 6),
            samples=self.samples,
            sample_rate_hz=self.rate_hz,
            distance_km=round(self.distance_m / 1000.0, 6),
            avg_speed_kmh=round(self.distance_m / duration_s * 3.6, 4)
            if duration_s > 0
            else 0.0,
            max_speed_kmh=round(self.max_speed * 3.6, 4),
            max_accel_g=bike_value(self.max_accel, 4),
            max_decel_g=bike_value(self.max_decel, 4),
            max_lean_left_deg=_rounded(self.lean_left, 3),
            max_lean_right_deg=_rounded(self.lean_right, 3),
            turns_left=turns_left,
            turns_right=turns_right,
            hard_braking_events=self.hard_brakes,
            crash_detected=plan.crash is not None,
            crash_events=events,
            saturated_samples=self.saturated,
            counter_wraps=self.wraps,
            gnss_records=self.gnss_records,
            event_records=self.event_records,
            spec=_spec_dict(plan),
        )
