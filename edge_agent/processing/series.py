"""Whole-ride series kept on the 100 Hz grid (small next to the native data).

A 3-hour ride is 1.08 million grid points: each float32 series costs about
4 MB. The pipeline keeps lean, yaw rate, longitudinal acceleration, speed and
the per-cell acceleration peaks for the whole ride so analytics and the crash
verdict see the ride at once, while the native-rate samples only pass
through (and the model input only as far as the crash scorer needs it).
"""

from __future__ import annotations

import bisect

import numpy as np
import numpy.typing as npt

from .samples import STANDARD_GRAVITY_MPS2

__all__ = ["BlockSeries", "GrowableArray", "PeakTracker"]

_MIN_CAPACITY = 4096


class BlockSeries:
    """An append-only float32 series kept as a list of blocks.

    Appending never copies what is already stored (a growing contiguous
    array would briefly hold its old and new buffers: three times the data).
    ``slice`` reads a recent range cheaply; ``values`` joins everything once.
    """

    def __init__(self) -> None:
        self._blocks: list[npt.NDArray[np.float32]] = []
        self._starts: list[int] = []
        self._size = 0

    def __len__(self) -> int:
        return self._size

    def append(self, values: npt.ArrayLike) -> None:
        """Append values at the end."""
        block = np.asarray(values, dtype=np.float32)
        if len(block):
            self._blocks.append(block)
            self._starts.append(self._size)
            self._size += len(block)

    def slice(self, lo: int, hi: int) -> npt.NDArray[np.float32]:
        """Return values ``lo..hi`` (a copy)."""
        first = max(0, bisect.bisect_right(self._starts, lo) - 1)
        parts = []
        for start, block in zip(
            self._starts[first:], self._blocks[first:], strict=True
        ):
            if start >= hi:
                break
            parts.append(block[max(0, lo - start) : hi - start])
        return np.concatenate(parts) if parts else np.empty(0, dtype=np.float32)

    @property
    def values(self) -> npt.NDArray[np.float32]:
        """Return the whole series as one array (joined once, then kept)."""
        if len(self._blocks) > 1:
            self._blocks = [np.concatenate(self._blocks)]
            self._starts = [0]
        return self._blocks[0] if self._blocks else np.empty(0, dtype=np.float32)


class GrowableArray:
    """A 1-D float32 array that grows by doubling, updated in place."""

    def __init__(self) -> None:
        self._data = np.zeros(_MIN_CAPACITY, dtype=np.float32)
        self._size = 0

    def __len__(self) -> int:
        return self._size

    @property
    def values(self) -> npt.NDArray[np.float32]:
        """Return a view of the filled part."""
        return self._data[: self._size]

    def reserve(self, size: int) -> None:
        """Make room for ``size`` values; new values read as zero."""
        if size > len(self._data):
            grown = np.zeros(max(size, 2 * len(self._data)), dtype=np.float32)
            grown[: self._size] = self._data[: self._size]
            self._data = grown
        self._size = max(self._size, size)


class PeakTracker:
    """Largest acceleration magnitude per 10 ms grid cell, in g, from native
    samples.

    A crash impact can exceed the accelerometer's full scale; the clipped
    samples then read the full scale on that axis, which would let a smaller
    unclipped shock later in the crash look larger. For each clipped burst
    the true peak of the axis is estimated by the vertex of a parabola through
    the ``CLIP_FIT_SAMPLES`` unclipped samples either side, and the burst's
    middle cell gets the magnitude with that estimate. A burst cut by a chunk
    boundary sees one side only and keeps its clipped magnitude.
    """

    def __init__(self, cell_us: int, full_scale_g: float | None) -> None:
        self._cell_us = cell_us
        # Within two counts of either end of the int16 range is clipped.
        self._limit_g = None if not full_scale_g else full_scale_g * (1 - 2 / 32768)
        self.peaks = GrowableArray()

    def add(
        self,
        t_rel_us: npt.NDArray[np.int64],
        acc_mps2: npt.NDArray[np.float32],
        saturated: npt.NDArray[np.bool_],
    ) -> None:
        """Fold sorted samples (µs since the first sample) into their cells.

        ``saturated`` flags samples at a sensor limit; only chunks with one
        are searched for clipped bursts.
        """
        if len(t_rel_us) == 0:
            return
        magnitude = np.sqrt(np.einsum("ij,ij->i", acc_mps2, acc_mps2))
        magnitude /= STANDARD_GRAVITY_MPS2
        cells = t_rel_us // self._cell_us
        starts = np.concatenate([[0], np.flatnonzero(np.diff(cells)) + 1])
        maxima = np.maximum.reduceat(magnitude, starts)
        index = cells[starts]
        self.peaks.reserve(int(index[-1]) + 1)
        values = self.peaks.values
        # A cell cut by a chunk boundary keeps the larger of its two halves.
        values[index] = np.maximum(values[index], maxima)
        if self._limit_g is not None and saturated.any():
            self._add_clipped(cells, acc_mps2 / np.float32(STANDARD_GRAVITY_MPS2))

    def _add_clipped(
        self, cells: npt.NDArray[np.int64], acc_g: npt.NDArray[np.float32]
    ) -> None:
        assert self._limit_g is not None
        clipped = np.abs(acc_g) >= self._limit_g
        burst = clipped.any(axis=1)
        if not burst.any():
            return
        edges = np.diff(np.concatenate([[0], burst.astype(np.int8), [0]]))
        values = self.peaks.values
        for start, stop in zip(
            np.flatnonzero(edges == 1), np.flatnonzero(edges == -1), strict=True
        ):
            axis_peaks = np.abs(acc_g[start:stop]).max(axis=0).astype(np.float64)
            for axis in np.flatnonzero(clipped[start:stop].any(axis=0)):
                axis_peaks[axis] = _extrapolated_peak(
                    np.abs(acc_g[:, axis]), int(start), int(stop), self._limit_g
                )
            cell = int(cells[(start + stop - 1) // 2])
            values[cell] = max(float(values[cell]), float(np.linalg.norm(axis_peaks)))


# Unclipped samples each side of a clipped burst that the parabola goes
# through: enough to average noise, few enough to stay on the pulse's flanks.
CLIP_FIT_SAMPLES = 3
# An estimate beyond this many full scales is an ill-conditioned fit.
_MAX_CLIP_FACTOR = 3.0


def _extrapolated_peak(
    magnitude: npt.NDArray[np.float32], start: int, stop: int, limit: float
) -> float:
    """Return the vertex of a parabola through the flanks of a clipped run."""
    lo = max(0, start - CLIP_FIT_SAMPLES)
    hi = min(len(magnitude), stop + CLIP_FIT_SAMPLES)
    index = np.concatenate([np.arange(lo, start), np.arange(stop, hi)])
    if start - lo < 2 or hi - stop < 2:
        return limit
    a, b, c = np.polyfit(index.astype(np.float64), magnitude[index], 2)
    if a >= 0:
        return limit
    vertex = c - b * b / (4 * a)
    return float(np.clip(vertex, limit, _MAX_CLIP_FACTOR * limit))
