"""Assemble a whole ride plan from a ``RideSpec``: parts, crash, header, bumps.

Random streams (all children of ``SeedSequence(spec.seed)``, so the same seed
gives the same ride): the motion plan, the crash, the walk after a crash, the
sensor errors and noise, the GNSS errors, and the log's identities (log id,
counter start). The plan does not depend on the sample rate, so one seed is
the same ride at 100 Hz and at 1 kHz.

Part boundaries after a crash sit on the sample grid; a sample belongs to the
part whose ``[start, end)`` holds its time.
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
import numpy.typing as npt

from firmware_bridge.logformat import Channel, EventKind, LogHeader

from .aftermath import GetUpPart, LyingPart
from .constants import FIRMWARE_VERSION, G_M_S2, MAG_FULL_SCALE_UT
from .crash import build_crash
from .crash_canvas import OnsetState
from .kinematics import KinematicPart, evaluate_plan
from .parts import Part, PartSamples
from .planner import (
    STYLES,
    BikeParams,
    GaitParams,
    KinematicPlan,
    Manoeuvre,
    Mode,
    PlanBuilder,
    RidingStyle,
)
from .scenarios import plan_riding
from .spec import RideSpec
from .walking import dismount, mount, walk_about

__all__ = ["Bumps", "CrashInfo", "RidePlan", "plan_ride"]

F64 = npt.NDArray[np.float64]

# Wheelbase: the rear wheel meets a bump this far behind the front (m).
_WHEELBASE_M = 1.45
# Roads: bumps need some speed to matter (m/s).
_BUMP_MIN_SPEED_M_S = 3.0
# Share of bumps that are potholes (1.5-3 g rather than 0.25-0.9 g).
_POTHOLE_SHARE = 0.08
# Grid for picking a crash moment (s): fine enough for a 0.6 s lean-in.
_ONSET_GRID_S = 0.02
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Bumps:
    """Road bumps (front wheel time, peak g, pulse width, rear-wheel delay)."""

    t_s: F64
    peak_g: F64
    width_s: F64
    delay_s: F64


@dataclass(frozen=True)
class CrashInfo:
    """Times (s since the first sample) and size of the planned crash."""

    kind: str
    onset_s: float
    impact_s: float
    peak_g: float
    airbag_s: float
    rest_s: float


@dataclass(frozen=True)
class RidePlan:
    """Everything to generate a ride's samples chunk by chunk."""

    spec: RideSpec
    header: LogHeader
    n_samples: int
    parts: tuple[Part, ...]
    part_first_sample: npt.NDArray[np.int64]
    riding_turns_rad: tuple[float, ...]  # heading change of each riding manoeuvre
    crash: CrashInfo | None
    events: tuple[tuple[float, EventKind, int], ...]  # (t_s, kind, value)
    bumps: Bumps
    bike: BikeParams
    sensor_seed: np.random.SeedSequence
    gnss_seed: np.random.SeedSequence
    ride_start_s: float | None
    ride_end_s: float | None

    def evaluate(self, index: npt.NDArray[np.int64]) -> PartSamples:
        """Return the noise-free motion at global sample indices ``index``."""
        t_s = index / self.spec.sample_rate_hz
        which = np.searchsorted(self.part_first_sample, index, side="right") - 1
        pieces = []
        for p in np.unique(which):
            mask = which == p
            pieces.append(self.parts[int(p)].evaluate(t_s[mask]))
        return PartSamples.concat(pieces)


def _plan_day(b: PlanBuilder, spec: RideSpec) -> None:
    """Walk to the bike, ride, walk away (or only walk when riding_s is 0)."""
    rng = b.rng
    if spec.riding_s <= 0:
        walk_about(b, spec.walk_before_s + spec.walk_after_s)
        return
    riding_pitch = math.radians(STYLES[RidingStyle.CITY].pitch_deg)
    if spec.walk_before_s > 0:
        walk_about(b, spec.walk_before_s)
        b.hold(float(rng.uniform(3.0, 8.0)))  # helmet and gloves
        mount(b, riding_pitch)
    else:
        b.set_mode(Mode.BIKE)
        b.pitch_to(riding_pitch, 0.5)
    b.hold(float(rng.uniform(2.0, 5.0)))
    b.set_engine(True)
    b.hold(float(rng.uniform(4.0, 12.0)))
    b.ride_start_s = b.t
    plan_riding(b, spec.scenario, b.t + spec.riding_s)
    b.ride_end_s = b.t
    b.hold(float(rng.uniform(3.0, 10.0)))
    b.set_engine(False)
    b.hold(float(rng.uniform(1.0, 3.0)))
    if spec.walk_after_s > 0:
        dismount(b)
        walk_about(b, spec.walk_after_s)
    else:
        b.hold(1.0)


def _riding_manoeuvres(kin: KinematicPlan) -> list[Manoeuvre]:
    return [m for m in kin.manoeuvres if m.kind in ("turn", "bend")]


def _choose_onset(
    kin: KinematicPlan, spec: RideSpec, rng: np.random.Generator
) -> float:
    """Return the crash onset time: the spec's, or a fitting moment by seed."""
    assert kin.ride_start_s is not None and kin.ride_end_s is not None
    if spec.crash_at_s is not None:
        return kin.ride_start_s + spec.crash_at_s
    t = np.arange(kin.ride_start_s + 5.0, kin.ride_end_s - 2.0, _ONSET_GRID_S)
    v = np.maximum(kin.accel.integral(t), 0.0)
    r = kin.yaw_rate.value(t)
    a = kin.accel.value(t)
    lean_deg = np.degrees(np.arctan(v * r / G_M_S2))
    heading = kin.yaw_rate.integral(t)
    # Heading change so far within the manoeuvre each instant falls in.
    so_far = np.full(len(t), np.nan)
    for m in _riding_manoeuvres(kin):
        inside = (t >= m.t_start_s) & (t < m.t_end_s)
        start = kin.yaw_rate.integral(np.array([m.t_start_s]))[0]
        so_far[inside] = np.degrees(np.abs(heading[inside] - start))
    leaning = (np.abs(lean_deg) >= 15.0) & (v >= 6.0)
    if spec.crash == "lowside":
        wanted = leaning & (so_far <= 25.0)
    elif spec.crash == "highside":
        wanted = leaning & (so_far >= 60.0)
    elif spec.crash == "standstill":
        # Stopped on the bike: at lights, or the final stop of the ride.
        stopped = v <= 0.2
        for candidates in (stopped & (t > kin.ride_start_s + 20.0), stopped):
            found = np.flatnonzero(candidates)
            if len(found):
                return float(t[int(rng.choice(found))])
        return float(t[-1])
    else:
        wanted = np.isnan(so_far) & (v >= 8.0) & (a == 0.0)
    for candidates in (wanted, np.isnan(so_far) & (v >= 5.0), v >= v.max() - 1e-9):
        found = np.flatnonzero(candidates)
        if len(found):
            return float(t[int(rng.choice(found))])
    return float(t[0])


def _turn_angles(kin: KinematicPlan, cut_s: float | None) -> tuple[float, ...]:
    """Return the heading change of riding manoeuvres, cut at a crash."""
    angles = []
    for m in _riding_manoeuvres(kin):
        if cut_s is not None and m.t_start_s >= cut_s:
            continue
        if cut_s is not None and m.t_end_s > cut_s:
            ends = kin.yaw_rate.integral(np.array([m.t_start_s, cut_s]))
            angles.append(float(ends[1] - ends[0]))
        else:
            angles.append(m.angle_rad)
    return tuple(angles)


def _bumps(kin: KinematicPlan, t_end_s: float, rng: np.random.Generator) -> Bumps:
    """Place road bumps along the ridden distance (Poisson per kilometre)."""
    step_s = 0.1
    t = np.arange(kin.t_start_s, t_end_s, step_s)
    v = np.maximum(kin.accel.integral(t), 0.0)
    per_km = np.array(
        [STYLES[RidingStyle(k)].bumps_per_km for k in range(len(RidingStyle))]
    )
    rolling = (kin.mode.at(t) == Mode.BIKE) & (v > _BUMP_MIN_SPEED_M_S)
    expected = np.cumsum(
        np.where(rolling, v * step_s * per_km[kin.style.at(t)] / 1000, 0)
    )
    total = float(expected[-1]) if len(expected) else 0.0
    count = int(rng.poisson(total))
    at = np.sort(rng.uniform(0.0, total, count))
    t_b = np.interp(at, expected, t)
    v_b = np.maximum(kin.accel.integral(t_b), _BUMP_MIN_SPEED_M_S)
    pothole = rng.random(count) < _POTHOLE_SHARE
    peak = np.where(
        pothole, rng.uniform(1.5, 3.0, count), rng.uniform(0.25, 0.9, count)
    )
    return Bumps(t_b, peak, rng.uniform(0.03, 0.05, count), _WHEELBASE_M / v_b)


def _header(spec: RideSpec, rng: np.random.Generator) -> LogHeader:
    log_id = uuid.UUID(bytes=rng.bytes(16), version=4).hex
    drawn_counter = int(rng.integers(0, 1 << 32))
    counter = drawn_counter if spec.counter_start_us is None else spec.counter_start_us
    start_us = None
    if spec.start_utc is not None:
        start_us = (spec.start_utc - _EPOCH) // timedelta(microseconds=1)
    channels = Channel.ACCEL | Channel.GYRO | (Channel.MAG if spec.with_mag else 0)
    return LogHeader(
        suit_serial=spec.suit_serial,
        firmware_version=FIRMWARE_VERSION,
        log_id=log_id,
        start_utc_us=start_us,
        counter_start_us=counter,
        sample_rate_hz=spec.sample_rate_hz,
        accel_full_scale_g=spec.accel_full_scale_g,
        gyro_full_scale_dps=spec.gyro_full_scale_dps,
        mag_full_scale_ut=MAG_FULL_SCALE_UT if spec.with_mag else None,
        channels=Channel(channels),
    )


def plan_ride(spec: RideSpec) -> RidePlan:
    """Plan the whole ride of ``spec`` (cheap: no samples are generated).

    Raises:
        SynthSpecError: a field of ``spec`` is out of range.
    """
    spec.validate()
    rate = spec.sample_rate_hz
    plan_seed, crash_seed, post_seed, sensor_seed, gnss_seed, id_seed = (
        np.random.SeedSequence(spec.seed).spawn(6)
    )
    plan_rng = np.random.default_rng(plan_seed)
    gait = GaitParams.draw(plan_rng)
    bike = BikeParams.draw(plan_rng)
    b = PlanBuilder(plan_rng, 0.0, float(plan_rng.uniform(-np.pi, np.pi)), gait, bike)
    _plan_day(b, spec)
    kin = b.build()
    header = _header(spec, np.random.default_rng(id_seed))

    def snap(t_s: float) -> float:
        return math.ceil(t_s * rate - 1e-6) / rate

    parts: list[Part] = []
    crash = None
    events: list[tuple[float, EventKind, int]] = []
    if spec.crash is None:
        parts.append(KinematicPart(kin, 0.0, kin.t_end_s))
        cut_s = None
    else:
        crash_rng = np.random.default_rng(crash_seed)
        cut_s = snap(_choose_onset(kin, spec, crash_rng))
        onset = OnsetState.from_samples(cut_s, evaluate_plan(kin, np.array([cut_s])))
        track = build_crash(spec.crash, onset, rate, crash_rng)
        lying_s = spec.lying_s or float(crash_rng.uniform(20.0, 60.0))
        lie_end = snap(track.t_end_s + lying_s)
        r_lie = track.final_body_to_world
        parts += [
            KinematicPart(kin, 0.0, cut_s),
            track,
            LyingPart(r_lie, onset.heading_rad, track.t_end_s, lie_end),
        ]
        if spec.walk_after_s > 0:
            post_rng = np.random.default_rng(post_seed)
            up_end = snap(lie_end + float(post_rng.uniform(2.5, 4.5)))
            pb = PlanBuilder(
                post_rng, up_end, float(post_rng.uniform(-np.pi, np.pi)), gait, bike
            )
            pb.hold(float(post_rng.uniform(5.0, 15.0)))  # standing, dazed
            walk_about(pb, spec.walk_after_s, pace=0.8)
            post = pb.build()
            standing = evaluate_plan(post, np.array([up_end])).body_to_world[0]
            parts += [
                GetUpPart(r_lie, standing, onset.heading_rad, lie_end, up_end),
                KinematicPart(post, up_end, post.t_end_s),
            ]
        crash = CrashInfo(
            spec.crash,
            cut_s,
            track.impact_s,
            track.peak_g,
            track.airbag_s,
            track.rest_s,
        )
        events.append((track.airbag_s, EventKind.AIRBAG_DEPLOYED, 1))

    n_samples = math.ceil(parts[-1].t_end_s * rate - 1e-6)
    first = np.array([round(p.t_start_s * rate) for p in parts], dtype=np.int64)
    return RidePlan(
        spec=spec,
        header=header,
        n_samples=n_samples,
        parts=tuple(parts),
        part_first_sample=first,
        riding_turns_rad=_turn_angles(kin, cut_s),
        crash=crash,
        events=tuple(events),
        bumps=_bumps(kin, cut_s if cut_s is not None else kin.t_end_s, plan_rng),
        bike=bike,
        sensor_seed=sensor_seed,
        gnss_seed=gnss_seed,
        ride_start_s=kin.ride_start_s,
        ride_end_s=kin.ride_end_s,
    )
