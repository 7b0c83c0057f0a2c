"""Labelled contract v1 windows from synthesised rides (NumPy only).

Each ride is synthesised by ``firmware_bridge.synth`` from a ``RideSpec`` that
is a pure function of its seed (scenario, native rate 100 Hz-1 kHz, crash type
or none, walking before and after, accelerometer full scale). Its signals take
the path the gateway's take:

1. the synthesiser's ``accel_g`` and ``gyro_dps`` are exactly what a decoder
   reads back from the log: int16 counts, clipped at the sensors' full scales
   (``physical_to_raw``, then ``raw_to_physical``); ``tests/models`` checks
   this through a real encode and decode;
2. angular rate from deg/s to rad/s;
3. ``contract.resample_to_model_rate`` and ``contract.make_windows``.

Labels, per window ``[s, s + 2 s)`` and true impact time ``t``:

- ``1`` when ``s + EDGE_S <= t <= s + 2 s - EDGE_S``: the impact lies in the
  middle 1.5 s, where the network sees both its onset and its aftermath;
- ``-1`` (ignored) when the window holds the impact nearer an edge, or starts
  within ``AFTERMATH_S`` after it (sliding and tumbling are neither a clean
  crash onset nor normal riding);
- ``0`` otherwise, including lying still and walking long after a crash.

Training rides may be *augmented*: extra positive windows at sub-hop offsets
around the impact (``AUGMENT_STEP_S``), so the few crashes teach the network
the impact at every position in the window rather than at three.

Errors: ``DatasetError`` (a spec the synthesiser rejects, seeds overlapping).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from firmware_bridge.synth import CRASH_KINDS, SCENARIOS, RideSpec, synthesise

from . import contract
from .errors import DatasetError

__all__ = [
    "AFTERMATH_S",
    "EDGE_S",
    "RideWindows",
    "WindowSet",
    "build_window_set",
    "imu_to_model_input",
    "label_windows",
    "plan_rides",
    "ride_windows",
    "split_seeds",
]

_LOGGER = logging.getLogger(__name__)

# Impact this close to a window edge: ambiguous (too little before or after).
EDGE_S = 0.25
# After the impact the rider slides and tumbles for a few seconds; those
# windows are left out of training rather than called normal riding.
AFTERMATH_S = 8.0
# Step of the extra positive windows around a training impact: 30 positions
# across the middle 1.5 s of the window.
AUGMENT_STEP_S = 0.05
# Validation seeds start this far above training seeds, so the ranges cannot
# meet for any realistic ride count.
VALIDATION_SEED_OFFSET = 1_000_000

NATIVE_RATES_HZ = (100.0, 200.0, 250.0, 400.0, 500.0, 1000.0)
# Most suits log at +-16 g; 8 g makes the network see hard clipping, 32 g
# the unclipped peak.
ACCEL_FULL_SCALES_G = (8, 16, 16, 32)
RIDING_S_RANGE = (90.0, 240.0)
WALK_S_RANGE = (0.0, 40.0)


@dataclass(frozen=True)
class RideWindows:
    """The windows of one ride, their labels and the ride's truth."""

    seed: int
    scenario: str
    crash: str | None
    native_rate_hz: float
    windows: npt.NDArray[np.float32]  # (n, 200, 6)
    labels: npt.NDArray[np.int8]  # (n,): 1, 0, -1 ignored
    starts_s: npt.NDArray[np.float64]  # (n,) from the ride's first sample
    impact_s: float | None
    riding_s: float  # on the bike (riding or stopped), before any crash
    extra_windows: npt.NDArray[np.float32]  # augmentation, all positive


@dataclass(frozen=True)
class WindowSet:
    """Windows of many rides, concatenated in ride order."""

    rides: list[RideWindows]
    windows: npt.NDArray[np.float32]
    labels: npt.NDArray[np.int8]
    extra_windows: npt.NDArray[np.float32]

    @property
    def labelled_count(self) -> int:
        """Return how many windows ``labelled`` returns."""
        return int(np.sum(self.labels >= 0)) + len(self.extra_windows)

    @property
    def positive_count(self) -> int:
        """Return how many of those are positive."""
        return int(np.sum(self.labels == 1)) + len(self.extra_windows)

    def labelled(self) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int8]]:
        """Return windows labelled 0 or 1 (augmentation included) and labels."""
        keep = self.labels >= 0
        windows = np.concatenate([self.windows[keep], self.extra_windows])
        labels = np.concatenate(
            [self.labels[keep], np.ones(len(self.extra_windows), dtype=np.int8)]
        )
        return windows, labels


def split_seeds(
    seed: int, train_rides: int, validation_rides: int
) -> tuple[list[int], list[int]]:
    """Return disjoint training and validation ride seeds derived from ``seed``."""
    if not 0 < train_rides < VALIDATION_SEED_OFFSET:
        raise DatasetError(
            f"train_rides must be 1..{VALIDATION_SEED_OFFSET - 1}, found {train_rides}"
        )
    if not 0 <= validation_rides < VALIDATION_SEED_OFFSET:
        raise DatasetError(
            f"validation_rides must be 0..{VALIDATION_SEED_OFFSET - 1}, found "
            f"{validation_rides}"
        )
    base = seed * 2 * VALIDATION_SEED_OFFSET
    train = [base + i for i in range(train_rides)]
    validation = [base + VALIDATION_SEED_OFFSET + i for i in range(validation_rides)]
    return train, validation


def plan_rides(seeds: Sequence[int]) -> list[RideSpec]:
    """Return one ``RideSpec`` per seed; each spec depends on its seed only.

    Crash and no-crash rides alternate by seed parity, so every split of
    consecutive seeds holds both; the crash kind, scenario, rate and lengths
    are drawn from the seed.
    """
    specs = []
    for seed in seeds:
        rng = np.random.default_rng(seed)
        riding_s = float(rng.uniform(*RIDING_S_RANGE))
        crash = CRASH_KINDS[int(rng.integers(len(CRASH_KINDS)))]
        # Half the rides end in a crash: plenty of positives, and the decision
        # threshold is chosen on validation rides, not on this prior.
        has_crash = seed % 2 == 0
        specs.append(
            RideSpec(
                seed=seed,
                scenario=SCENARIOS[int(rng.integers(len(SCENARIOS)))],
                riding_s=riding_s,
                sample_rate_hz=float(rng.choice(NATIVE_RATES_HZ)),
                crash=crash if has_crash else None,
                # None: the synthesiser picks a moment that fits the kind
                # (a lowside early in a corner, a collision on a straight).
                crash_at_s=None,
                walk_before_s=float(rng.uniform(*WALK_S_RANGE)),
                walk_after_s=float(rng.uniform(*WALK_S_RANGE)),
                accel_full_scale_g=int(rng.choice(ACCEL_FULL_SCALES_G)),
                # The model reads accel and gyro only; skipping the rest is
                # faster and changes nothing it sees.
                with_mag=False,
                with_gnss=False,
            )
        )
    return specs


def imu_to_model_input(
    t_s: npt.NDArray[np.float64],
    accel_g: npt.NDArray[np.floating],
    gyro_dps: npt.NDArray[np.floating],
    native_rate_hz: float,
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float32]]:
    """Convert physical accel (g) and gyro (deg/s) to the 100 Hz model input."""
    values = np.hstack(
        [np.asarray(accel_g, dtype=np.float64), np.deg2rad(gyro_dps, dtype=np.float64)]
    )
    return contract.resample_to_model_rate(t_s, values, native_rate_hz)


def label_windows(
    starts_s: npt.NDArray[np.float64], impact_s: float | None
) -> npt.NDArray[np.int8]:
    """Return 1 / 0 / -1 (ignored) per window start, as the module docstring says."""
    labels = np.zeros(len(starts_s), dtype=np.int8)
    if impact_s is None:
        return labels
    ends_s = starts_s + contract.WINDOW_S
    holds_impact = (starts_s <= impact_s) & (impact_s < ends_s)
    aftermath = (starts_s > impact_s) & (starts_s < impact_s + AFTERMATH_S)
    labels[holds_impact | aftermath] = -1
    middle = (starts_s + EDGE_S <= impact_s) & (impact_s <= ends_s - EDGE_S)
    labels[middle] = 1
    return labels


def _augmented_windows(
    model_input: npt.NDArray[np.float32], impact_s: float
) -> npt.NDArray[np.float32]:
    """Return extra positive windows with the impact at many offsets."""
    offsets_s = np.arange(EDGE_S, contract.WINDOW_S - EDGE_S + 1e-9, AUGMENT_STEP_S)
    starts = np.rint((impact_s - offsets_s) * contract.MODEL_RATE_HZ).astype(int)
    starts = starts[
        (starts >= 0) & (starts + contract.WINDOW_SAMPLES <= len(model_input))
    ]
    # Starts on the regular hop grid are already in the ride's windows.
    starts = starts[starts % contract.HOP_SAMPLES != 0]
    if len(starts) == 0:
        return np.empty((0, contract.WINDOW_SAMPLES, model_input.shape[1]), np.float32)
    index = starts[:, None] + np.arange(contract.WINDOW_SAMPLES)[None, :]
    return np.asarray(model_input[index], dtype=np.float32)


def ride_windows(spec: RideSpec, augment: bool = False) -> RideWindows:
    """Synthesise one ride and return its labelled model windows.

    Raises:
        DatasetError: the synthesiser rejects ``spec``.
    """
    try:
        ride = synthesise(spec)
    except ValueError as exc:
        raise DatasetError(f"ride seed {spec.seed}: cannot synthesise: {exc}") from exc

    _, model_input = imu_to_model_input(
        ride.t_s, ride.accel_g, ride.gyro_dps, spec.sample_rate_hz
    )
    windows = np.ascontiguousarray(contract.make_windows(model_input))
    starts_s = contract.window_starts_s(len(windows))

    impacts = ride.truth.crash_impact_s  # seconds since the first sample
    impact_s = float(impacts[0]) if impacts else None
    extra = (
        _augmented_windows(model_input, impact_s)
        if augment and impact_s is not None
        else np.empty((0, *windows.shape[1:]), dtype=np.float32)
    )
    return RideWindows(
        seed=spec.seed,
        scenario=spec.scenario,
        crash=spec.crash,
        native_rate_hz=float(spec.sample_rate_hz),
        windows=windows,
        labels=label_windows(starts_s, impact_s),
        starts_s=starts_s,
        impact_s=impact_s,
        riding_s=float(np.count_nonzero(ride.sample_truth.on_bike))
        / spec.sample_rate_hz,
        extra_windows=extra,
    )


def build_window_set(specs: Sequence[RideSpec], augment: bool = False) -> WindowSet:
    """Synthesise every ride of ``specs`` and concatenate their windows."""
    rides = [ride_windows(spec, augment) for spec in specs]
    if not rides:
        raise DatasetError("no rides to build windows from")
    shape = (0, contract.WINDOW_SAMPLES, len(contract.INPUT_CHANNELS))
    return WindowSet(
        rides=rides,
        windows=np.concatenate(
            [r.windows for r in rides] + [np.empty(shape, np.float32)]
        ),
        labels=np.concatenate([r.labels for r in rides] + [np.empty(0, np.int8)]),
        extra_windows=np.concatenate(
            [r.extra_windows for r in rides] + [np.empty(shape, np.float32)]
        ),
    )
