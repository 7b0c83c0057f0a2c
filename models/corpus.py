"""Recordings for training and evaluation: rides and off-bike life, augmented.

A *recording* is what one suit logs in one go, planned from its seed alone
(``plan_recordings``):

- a **ride** from ``firmware_bridge.synth`` (city, highway, track or mixed;
  walking before and after; crash kind or none, the standstill fall
  included), with riding stunts overlaid (wheelies, stoppies, knee-down,
  kerbs, deep potholes; ``firmware_bridge.synth.stunts``), most on the track;
- an **off-bike session** (``firmware_bridge.synth.offbike``): walking,
  stairs, jogging, jumping, sitting down hard, the jacket dropped or thrown
  into a car.

Every recording is then *measured* as a suit would: the sensor mounted in
any orientation (a random rotation of both sensors' axes, half the time
uniform over all rotations, otherwise tilted up to 20 degrees), extra
vibration noise, the accelerometer range 4, 8 or 16 g (values clipped there)
and the gyroscope range 1000 or 2000 deg/s, at the native rate of the spec
(100 Hz to 1 kHz). The streams then take the pipeline's path to the model:
``contract.resample_to_model_rate`` and ``contract.make_windows``.

Labels per window are ``dataset.label_windows``' (1 around the impact, -1
ambiguous or aftermath, 0 otherwise). Time is accounted per window start:
*riding* while the rider is on the bike (before any crash), *off-bike*
otherwise, up to a crash (nothing after an impact counts as off-bike time,
so the off-bike false-alarm rate errs high).

Seeds: recording ``i`` of a set with base seed ``b`` has seed ``b + i``; sets
made from different ``--seed`` values never share a seed
(``dataset.split_seeds`` spacing). NumPy only.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt

from firmware_bridge.synth import (
    CRASH_KINDS,
    EXTRA_CRASH_KINDS,
    SCENARIOS,
    RideSpec,
    synthesise,
)
from firmware_bridge.synth.offbike import OFFBIKE_SCENES, offbike_stream
from firmware_bridge.synth.stunts import overlay_stunts

from . import contract
from .dataset import EDGE_S, imu_to_model_input, label_windows
from .errors import DatasetError

__all__ = [
    "OFFBIKE",
    "Measurement",
    "Recording",
    "RecordingSpec",
    "SetPlan",
    "cell_peak_g",
    "iter_recordings",
    "measure",
    "plan_recordings",
    "recording",
    "with_rate",
]

OFFBIKE = "offbike"
ALL_CRASHES = CRASH_KINDS + EXTRA_CRASH_KINDS
# Native rates and how often each is drawn. The 1 kHz share is small because
# synthesis costs grow with the rate; the robustness tests cover it directly.
NATIVE_RATES_HZ = (100.0, 200.0, 400.0, 500.0, 1000.0)
_RATE_WEIGHTS = (0.4, 0.25, 0.15, 0.1, 0.1)
ACCEL_RANGES_G = (4.0, 8.0, 16.0)
_ACCEL_RANGE_WEIGHTS = (0.2, 0.3, 0.5)
GYRO_RANGES_DPS = (1000.0, 2000.0)
# Half the suits have the IMU in any orientation, the rest near upright.
_ANY_ORIENTATION_SHARE = 0.5
_TILT_MAX_DEG = 20.0
# Extra vibration (g, 1 sigma) on top of the synthesiser's own.
_EXTRA_NOISE_G = (0.0, 0.05)
# Stunts per hour of riding: many on the track, some elsewhere.
_STUNTS_PER_H = {"track": 120.0, "city": 20.0, "highway": 10.0, "mixed": 20.0}
# Stunts per hour of a hard riding session: one every 4 s on average, so many
# overlap or follow each other within a 2 s window.
HARD_RIDING_STUNTS_PER_H = 900.0
HARD_OFFBIKE_SCENES = ("drop", "throw_car", "sit_hard", "jump", "jog", "stairs")
# Windows whose peaks stay below these are "calm"; training keeps a sample.
CALM_PEAK_G = 1.8
CALM_PEAK_RADS = 1.5


@dataclass(frozen=True)
class SetPlan:
    """How many recordings of each kind a set holds, and how long they are."""

    crash_rides: int
    normal_rides: int
    offbike_sessions: int
    crash_riding_s: tuple[float, float] = (60.0, 240.0)
    normal_riding_s: tuple[float, float] = (90.0, 300.0)
    offbike_s: tuple[float, float] = (600.0, 1800.0)
    walk_s: tuple[float, float] = (0.0, 40.0)
    # Native rates of normal rides and off-bike sessions, with weights; None
    # draws from NATIVE_RATES_HZ. Crash rides always use every rate.
    volume_rates: tuple[tuple[float, float], ...] | None = None
    # Extra off-bike sessions of the sharp scenes only (drops, throws,
    # sitting down hard, jumps, jogging, stairs): hard negatives for training.
    hard_offbike_sessions: int = 0
    # Extra rides without a crash whose stunts come one after another
    # (``HARD_RIDING_STUNTS_PER_H``): a wheelie straight after a stoppie, two
    # kerbs in a row. Hard negatives for training; they come last.
    hard_riding_sessions: int = 0

    @property
    def count(self) -> int:
        """Return the number of recordings."""
        return (
            self.crash_rides
            + self.normal_rides
            + self.offbike_sessions
            + self.hard_offbike_sessions
            + self.hard_riding_sessions
        )


@dataclass(frozen=True)
class Measurement:
    """How a suit measured a recording (mount, ranges, rate, noise)."""

    native_rate_hz: float
    rotation: tuple[float, ...]  # 3x3 row-major, body -> sensor axes
    accel_range_g: float
    gyro_range_dps: float
    extra_noise_g: float

    def matrix(self) -> npt.NDArray[np.float64]:
        """Return the rotation as a 3x3 matrix."""
        return np.asarray(self.rotation, dtype=np.float64).reshape(3, 3)


@dataclass(frozen=True)
class RecordingSpec:
    """One recording: a ride spec or an off-bike session, and its measurement."""

    seed: int
    ride: RideSpec | None
    offbike_s: float
    measurement: Measurement
    stunts_per_h: float
    offbike_scenes: tuple[str, ...] = OFFBIKE_SCENES

    @property
    def scenario(self) -> str:
        """Return the ride scenario, or ``offbike``."""
        return OFFBIKE if self.ride is None else self.ride.scenario

    @property
    def crash(self) -> str | None:
        """Return the crash kind, or None."""
        return None if self.ride is None else self.ride.crash


@dataclass(frozen=True)
class Recording:
    """A recording's windows, labels and truth (time in s from its start)."""

    spec: RecordingSpec
    model_input: npt.NDArray[np.float32]  # (m, 6) at 100 Hz
    windows: npt.NDArray[np.float32]  # (n, 200, 6) view of model_input
    labels: npt.NDArray[np.int8]
    starts_s: npt.NDArray[np.float64]
    on_bike: npt.NDArray[np.bool_]  # per window start, before any crash
    impact_s: float | None
    peak_g: npt.NDArray[np.float32]  # per 10 ms cell, the largest native |acc|
    riding_s: float
    offbike_s: float
    stunts: int

    def positive_windows(self, step_s: float) -> npt.NDArray[np.float32]:
        """Return windows with the impact at offsets every ``step_s`` (training)."""
        if self.impact_s is None:
            return np.empty((0, *self.windows.shape[1:]), dtype=np.float32)
        offsets_s = np.arange(EDGE_S, contract.WINDOW_S - EDGE_S + 1e-9, step_s)
        starts = np.rint((self.impact_s - offsets_s) * contract.MODEL_RATE_HZ)
        starts = starts.astype(int)
        ok = (starts >= 0) & (starts + contract.WINDOW_SAMPLES <= len(self.model_input))
        index = starts[ok][:, None] + np.arange(contract.WINDOW_SAMPLES)[None, :]
        return np.asarray(self.model_input[index], dtype=np.float32)


def _rotation(rng: np.random.Generator) -> npt.NDArray[np.float64]:
    """Return a mounting rotation: any orientation or a small tilt."""
    if rng.random() < _ANY_ORIENTATION_SHARE:
        q = rng.normal(size=4)
    else:
        axis = rng.normal(size=3)
        angle = math.radians(rng.uniform(0.0, _TILT_MAX_DEG))
        q = np.concatenate(
            [[math.cos(angle / 2)], math.sin(angle / 2) * axis / np.linalg.norm(axis)]
        )
    w, x, y, z = q / np.linalg.norm(q)
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        ]
    )


def _measurement(
    rng: np.random.Generator, rates: tuple[tuple[float, float], ...] | None
) -> Measurement:
    if rates is None:
        rate = float(rng.choice(NATIVE_RATES_HZ, p=_RATE_WEIGHTS))
    else:
        values, weights = zip(*rates, strict=True)
        w = np.asarray(weights, dtype=np.float64)
        rate = float(rng.choice(values, p=w / w.sum()))
    return Measurement(
        native_rate_hz=rate,
        rotation=tuple(float(v) for v in _rotation(rng).reshape(-1)),
        accel_range_g=float(rng.choice(ACCEL_RANGES_G, p=_ACCEL_RANGE_WEIGHTS)),
        gyro_range_dps=float(rng.choice(GYRO_RANGES_DPS)),
        extra_noise_g=float(rng.uniform(*_EXTRA_NOISE_G)),
    )


def plan_recordings(base_seed: int, plan: SetPlan) -> list[RecordingSpec]:
    """Return a set's recordings: crash rides, normal rides, off-bike, hard.

    The order is crash rides, normal rides, off-bike sessions, hard off-bike
    sessions, hard riding sessions (normal rides with dense stunts).

    Recording ``i`` has seed ``base_seed + i`` and depends on it alone (and
    on its position's kind).
    """
    specs: list[RecordingSpec] = []
    rides_end = plan.crash_rides + plan.normal_rides
    offbike_end = rides_end + plan.offbike_sessions + plan.hard_offbike_sessions
    for i in range(plan.count):
        seed = base_seed + i
        rng = np.random.default_rng(seed)
        crash_ride = i < plan.crash_rides
        measurement = _measurement(rng, None if crash_ride else plan.volume_rates)
        if rides_end <= i < offbike_end:
            length = float(rng.uniform(*plan.offbike_s))
            hard = i >= offbike_end - plan.hard_offbike_sessions
            scenes = HARD_OFFBIKE_SCENES if hard else OFFBIKE_SCENES
            specs.append(RecordingSpec(seed, None, length, measurement, 0.0, scenes))
            continue
        scenario = SCENARIOS[int(rng.integers(len(SCENARIOS)))]
        riding = plan.crash_riding_s if crash_ride else plan.normal_riding_s
        crash = ALL_CRASHES[int(rng.integers(len(ALL_CRASHES)))] if crash_ride else None
        ride = RideSpec(
            seed=seed,
            scenario=scenario,
            riding_s=float(rng.uniform(*riding)),
            sample_rate_hz=measurement.native_rate_hz,
            crash=crash,
            crash_at_s=None,
            walk_before_s=float(rng.uniform(*plan.walk_s)),
            walk_after_s=float(rng.uniform(*plan.walk_s)),
            # Clipping is the measurement's (4-16 g); 32 g keeps the
            # synthesiser's own clipping out of the way.
            accel_full_scale_g=32,
            gyro_full_scale_dps=4000,
            with_mag=False,
            with_gnss=False,
        )
        hard = i >= offbike_end
        per_h = HARD_RIDING_STUNTS_PER_H if hard else _STUNTS_PER_H[scenario]
        specs.append(RecordingSpec(seed, ride, 0.0, measurement, per_h))
    return specs


def measure(
    accel_g: npt.NDArray[np.floating],
    gyro_dps: npt.NDArray[np.floating],
    measurement: Measurement,
    rng: np.random.Generator,
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    """Return body-frame streams as the mounted sensor reads them (clipped)."""
    r = measurement.matrix().astype(np.float32)
    accel = _rotate(np.asarray(accel_g, dtype=np.float32), r)
    if measurement.extra_noise_g > 0:
        noise = rng.standard_normal(accel.shape, dtype=np.float32)
        accel += np.float32(measurement.extra_noise_g) * noise
    gyro = _rotate(np.asarray(gyro_dps, dtype=np.float32), r)
    np.clip(accel, -measurement.accel_range_g, measurement.accel_range_g, out=accel)
    np.clip(gyro, -measurement.gyro_range_dps, measurement.gyro_range_dps, out=gyro)
    return accel, gyro


def _rotate(
    values: npt.NDArray[np.float32], r: npt.NDArray[np.float32]
) -> npt.NDArray[np.float32]:
    """Return ``values @ r.T`` column by column (much faster than matmul here)."""
    out = np.empty_like(values)
    for i in range(3):
        out[:, i] = r[i, 0] * values[:, 0] + r[i, 1] * values[:, 1]
        out[:, i] += r[i, 2] * values[:, 2]
    return out


def cell_peak_g(
    t_s: npt.NDArray[np.float64], accel_g: npt.NDArray[np.floating], cells: int
) -> npt.NDArray[np.float32]:
    """Return the largest |acc| in each 10 ms cell of the model grid."""
    a = np.asarray(accel_g, dtype=np.float32)
    magnitude = np.sqrt(a[:, 0] ** 2 + a[:, 1] ** 2 + a[:, 2] ** 2)
    cell = np.minimum(
        ((t_s - t_s[0]) * contract.MODEL_RATE_HZ).astype(np.int64), cells - 1
    )
    # Cells are in time order: reduce each run of equal cell numbers.
    firsts = np.flatnonzero(np.diff(cell, prepend=-1))
    peak = np.zeros(cells, dtype=np.float32)
    peak[cell[firsts]] = np.maximum.reduceat(magnitude, firsts)
    return peak


def recording(spec: RecordingSpec) -> Recording:
    """Synthesise and measure one recording; return its windows and truth.

    Raises:
        DatasetError: the synthesiser rejects the spec.
    """
    rng = np.random.default_rng([spec.seed, 1])
    rate = spec.measurement.native_rate_hz
    stunts = 0
    impact_s: float | None = None
    try:
        if spec.ride is None:
            stream = offbike_stream(
                spec.seed, spec.offbike_s, rate, spec.offbike_scenes
            )
            t_s, accel, gyro = stream.t_s, stream.accel_g, stream.gyro_dps
            on_bike_native = np.zeros(len(t_s), dtype=bool)
        else:
            ride = synthesise(spec.ride)
            t_s = ride.t_s - ride.t_s[0]
            accel = ride.accel_g.copy()
            gyro = ride.gyro_dps.copy()
            impacts = ride.truth.crash_impact_s
            impact_s = float(impacts[0]) if impacts else None
            avoid = None if impact_s is None else (impact_s - 10.0, math.inf)
            truth = ride.sample_truth
            stunts = len(
                overlay_stunts(
                    t_s,
                    accel,
                    gyro,
                    truth.speed_m_s,
                    truth.lean_deg,
                    truth.on_bike,
                    rng,
                    per_hour=spec.stunts_per_h,
                    avoid_s=avoid,
                )
            )
            on_bike_native = truth.on_bike
    except ValueError as exc:
        raise DatasetError(
            f"recording seed {spec.seed}: cannot synthesise: {exc}"
        ) from exc

    accel, gyro = measure(accel, gyro, spec.measurement, rng)
    _, model_input = imu_to_model_input(t_s, accel, gyro, rate)
    windows = contract.make_windows(model_input)
    starts_s = contract.window_starts_s(len(windows))
    index = np.minimum(np.rint(starts_s * rate).astype(np.int64), len(t_s) - 1)
    on_bike = on_bike_native[index] if len(index) else np.zeros(0, dtype=bool)
    riding_s = float(np.count_nonzero(on_bike_native)) / rate
    aftermath_s = 0.0 if impact_s is None else float(t_s[-1]) - impact_s
    offbike_s = max(0.0, float(t_s[-1]) - riding_s - aftermath_s)
    return Recording(
        spec=spec,
        model_input=model_input,
        windows=windows,
        labels=label_windows(starts_s, impact_s),
        starts_s=starts_s,
        on_bike=np.asarray(on_bike, dtype=bool),
        impact_s=impact_s,
        peak_g=cell_peak_g(t_s, accel, len(model_input)),
        riding_s=riding_s,
        offbike_s=offbike_s,
        stunts=stunts,
    )


def iter_recordings(specs: Sequence[RecordingSpec]) -> Iterator[Recording]:
    """Yield each spec's recording in turn (one in memory at a time)."""
    for spec in specs:
        yield recording(spec)


def with_rate(spec: RecordingSpec, rate_hz: float) -> RecordingSpec:
    """Return ``spec`` measured at another native rate (robustness checks)."""
    measurement = replace(spec.measurement, native_rate_hz=rate_hz)
    ride = None if spec.ride is None else replace(spec.ride, sample_rate_hz=rate_hz)
    return replace(spec, ride=ride, measurement=measurement)
