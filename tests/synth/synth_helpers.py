"""Independent re-counts of truth fields from per-sample arrays."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt


def runs(mask: npt.NDArray[np.bool_]) -> list[tuple[int, int]]:
    """Return (start, stop) of the True runs of ``mask``."""
    edges = np.flatnonzero(np.diff(np.concatenate([[0], mask.astype(np.int8), [0]])))
    return list(zip(edges[0::2].tolist(), edges[1::2].tolist(), strict=True))


def count_turns(
    yaw_rate_dps: npt.NDArray[np.floating],
    on_bike: npt.NDArray[np.bool_],
    rate_hz: float,
    threshold_deg: float = 45.0,
) -> tuple[int, int, list[float]]:
    """Return (left, right, heading changes) of one-signed yaw-rate runs."""
    r = np.where(on_bike, yaw_rate_dps, 0.0)
    changes = []
    for sign in (1, -1):
        for start, stop in runs(sign * r > 1e-6):
            changes.append(float(np.sum(r[start:stop]) / rate_hz))
    left = sum(1 for c in changes if c >= threshold_deg)
    right = sum(1 for c in changes if c <= -threshold_deg)
    return left, right, changes


def count_hard_braking(
    long_accel_g: npt.NDArray[np.floating],
    on_bike: npt.NDArray[np.bool_],
    rate_hz: float,
) -> int:
    """Return runs of deceleration above 0.4 g lasting at least 0.5 s."""
    braking = on_bike & (long_accel_g < -0.4)
    return sum(1 for a, b in runs(braking) if (b - a) / rate_hz >= 0.5)
