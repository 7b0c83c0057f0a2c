"""Whole-ride series kept on the 100 Hz grid (small next to the native data).

A 3-hour ride is 1.08 million grid points: each float32 series costs about
4 MB, the six-channel model input 26 MB. The pipeline keeps these for the
whole ride so analytics and the crash verdict see the ride at once, while the
native-rate samples only pass through.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

__all__ = ["GrowableArray", "PeakTracker"]

_MIN_CAPACITY = 4096


class GrowableArray:
    """A float32 array (1-D or n x width) that grows by doubling."""

    def __init__(self, width: int | None = None) -> None:
        shape = (_MIN_CAPACITY,) if width is None else (_MIN_CAPACITY, width)
        self._data = np.zeros(shape, dtype=np.float32)
        self._size = 0

    def __len__(self) -> int:
        return self._size

    @property
    def values(self) -> npt.NDArray[np.float32]:
        """Return a view of the filled part."""
        return self._data[: self._size]

    def reserve(self, size: int) -> None:
        """Make room for ``size`` rows; new rows read as zero."""
        if size > len(self._data):
            capacity = max(size, 2 * len(self._data))
            grown = np.zeros((capacity, *self._data.shape[1:]), dtype=np.float32)
            grown[: self._size] = self._data[: self._size]
            self._data = grown
        self._size = max(self._size, size)

    def append(self, rows: npt.ArrayLike) -> None:
        """Append rows at the end."""
        block = np.asarray(rows, dtype=np.float32)
        start = self._size
        self.reserve(start + len(block))
        self._data[start : start + len(block)] = block


class PeakTracker:
    """Largest native acceleration magnitude per 10 ms grid cell, in g."""

    def __init__(self, cell_us: int) -> None:
        self._cell_us = cell_us
        self.peaks = GrowableArray()

    def add(
        self, t_rel_us: npt.NDArray[np.int64], acc_g: npt.NDArray[np.float32]
    ) -> None:
        """Fold sorted samples (µs since the first sample) into their cells."""
        if len(t_rel_us) == 0:
            return
        magnitude = np.sqrt(np.einsum("ij,ij->i", acc_g, acc_g))
        cells = t_rel_us // self._cell_us
        starts = np.concatenate([[0], np.flatnonzero(np.diff(cells)) + 1])
        maxima = np.maximum.reduceat(magnitude, starts)
        index = cells[starts]
        self.peaks.reserve(int(index[-1]) + 1)
        values = self.peaks.values
        # A cell cut by a chunk boundary keeps the larger of its two halves.
        values[index] = np.maximum(values[index], maxima)
