"""Ride manoeuvres from grid series: turns, lean extremes, braking.

Definitions shared with the synthesiser (its truth files use the same ones):

- a *turn* is one continuous manoeuvre whose heading change is at least
  ``TURN_MIN_DEG`` in one direction; manoeuvres are separated by straight
  riding (the heading rate stays under ``TURN_RATE_DPS``);
- a *hard braking event* is a longitudinal deceleration above
  ``HARD_BRAKING_G`` sustained for at least ``HARD_BRAKING_MIN_S``.

All functions take uniformly sampled series and a mask of the samples that are
riding (crash spans excluded) and are pure NumPy.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

__all__ = [
    "HARD_BRAKING_G",
    "HARD_BRAKING_MIN_S",
    "TURN_MIN_DEG",
    "TURN_RATE_DPS",
    "count_hard_braking",
    "count_turns",
    "extremes",
    "moving_average",
    "runs",
]

TURN_MIN_DEG = 45.0
# Slowest heading rate that is still turning: a 500 m radius motorway bend at
# 100 km/h turns at 3.2°/s; lane changes and weaving stay below 45° anyway.
TURN_RATE_DPS = 2.0
# Heading-rate smoothing: longer than a rider's steering corrections,
# shorter than the straight (>= 4 s) between two manoeuvres.
TURN_SMOOTH_S = 1.0
# Two same-direction pieces closer than this are one manoeuvre whose rate
# briefly dipped (a bend that tightens again).
TURN_MERGE_GAP_S = 1.5
# Heading is integrated this far beyond the thresholded span on each side, to
# include the entry and exit where the rate is below ``TURN_RATE_DPS``.
TURN_EDGE_S = 1.0
HARD_BRAKING_G = 0.4
HARD_BRAKING_MIN_S = 0.5
# Road vibration is tens of hertz; 0.2 s averaging removes it and keeps the
# shape of a braking manoeuvre (which lasts about a second or more).
ACCEL_SMOOTH_S = 0.2
# Two braking pieces closer than this are one braking event.
BRAKING_MERGE_GAP_S = 1.0

F32 = npt.NDArray[np.float32]
B = npt.NDArray[np.bool_]


def moving_average(values: npt.ArrayLike, width: int) -> F32:
    """Return the centred moving average (over fewer samples at both ends).

    Sums in float64 (one cumulative sum, sliced) and returns float32, so a
    3-hour 100 Hz series needs 9 MB for the sum and 4.5 MB for the result.
    """
    x = np.asarray(values)
    n = len(x)
    if width <= 1 or n == 0:
        return x.astype(np.float32)
    width = min(width, n)
    cumsum = np.empty(n + 1)
    cumsum[0] = 0.0
    np.cumsum(x, dtype=np.float64, out=cumsum[1:])
    half = width // 2
    out = np.empty(n, dtype=np.float32)
    # Window of sample i: [i - half, i - half + width), clipped to the series.
    middle = out[half : n - width + half + 1]
    np.subtract(cumsum[width:], cumsum[: n - width + 1], out=middle, casting="unsafe")
    middle /= np.float32(width)
    head = np.arange(0, half)
    out[:half] = cumsum[head - half + width] / (head - half + width)
    tail = np.arange(n - width + half + 1, n)
    out[n - width + half + 1 :] = (cumsum[n] - cumsum[tail - half]) / (n - tail + half)
    return out


def runs(mask: B) -> list[tuple[int, int]]:
    """Return (start, stop) index pairs of the True runs of ``mask``."""
    edges = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    return list(
        zip(
            np.flatnonzero(edges == 1).tolist(),
            np.flatnonzero(edges == -1).tolist(),
            strict=True,
        )
    )


def _merge(spans: list[tuple[int, int]], max_gap: int) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for start, stop in spans:
        if merged and start - merged[-1][1] < max_gap:
            merged[-1] = (merged[-1][0], stop)
        else:
            merged.append((start, stop))
    return merged


def count_turns(
    yaw_rate_dps: npt.NDArray[np.floating], rate_hz: float, riding: B
) -> tuple[int, int]:
    """Return (left, right) turns from a heading-rate series (positive left)."""
    rate = np.where(riding, yaw_rate_dps, yaw_rate_dps.dtype.type(0))
    smooth = moving_average(rate, max(1, round(TURN_SMOOTH_S * rate_hz)))
    del rate
    edge = round(TURN_EDGE_S * rate_hz)
    gap = round(TURN_MERGE_GAP_S * rate_hz)
    counts = {1: 0, -1: 0}
    for sign in (1, -1):
        turning = smooth >= TURN_RATE_DPS if sign > 0 else smooth <= -TURN_RATE_DPS
        spans = _merge(runs(turning), gap)
        for start, stop in spans:
            lo, hi = max(0, start - edge), min(len(smooth), stop + edge)
            change_deg = float(smooth[lo:hi].sum(dtype=np.float64)) / rate_hz
            if sign * change_deg >= TURN_MIN_DEG:
                counts[sign] += 1
    return counts[1], counts[-1]


def count_hard_braking(
    long_accel_g: npt.NDArray[np.floating], rate_hz: float, riding: B
) -> int:
    """Return the number of hard braking events in a longitudinal series."""
    smooth = moving_average(long_accel_g, max(1, round(ACCEL_SMOOTH_S * rate_hz)))
    braking = (smooth < -HARD_BRAKING_G) & riding
    spans = _merge(runs(braking), round(BRAKING_MERGE_GAP_S * rate_hz))
    min_len = HARD_BRAKING_MIN_S * rate_hz
    return sum(1 for start, stop in spans if stop - start >= min_len)


def extremes(
    values: npt.NDArray[np.floating], rate_hz: float, riding: B
) -> tuple[float, float] | None:
    """Return (largest positive, largest negative as a positive number) of a
    smoothed series over the riding samples, or None without riding."""
    if not riding.any():
        return None
    smooth = moving_average(values, max(1, round(ACCEL_SMOOTH_S * rate_hz)))
    top = float(np.max(smooth, where=riding, initial=-np.inf))
    bottom = float(np.min(smooth, where=riding, initial=np.inf))
    return max(0.0, top), max(0.0, -bottom)
