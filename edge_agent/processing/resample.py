"""Resample a cleaned stream onto the 100 Hz model grid, chunk by chunk.

``models.contract.resample_to_model_rate`` defines the model's input: a boxcar
average as wide as one output period (``round(native / 100)`` samples) stamped
at the middle of its span, then linear interpolation at ``t0 + k / 100``. It
needs the whole array; this class computes the same values from chunks, so a
3-hour log never has to sit in memory at its native rate. The equality is
checked by ``tests/processing/test_resample.py`` against the contract function.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from models.contract import MODEL_RATE_HZ

__all__ = ["GridBlock", "StreamingResampler"]

F64 = npt.NDArray[np.float64]


class GridBlock:
    """Consecutive model-grid points: indices ``start..start+len`` and values."""

    def __init__(self, start: int, values: F64) -> None:
        self.start = start
        self.values = values

    def __len__(self) -> int:
        return len(self.values)

    @property
    def t_s(self) -> F64:
        """Return the grid times (seconds since the first sample)."""
        return (self.start + np.arange(len(self.values))) / MODEL_RATE_HZ


class StreamingResampler:
    """Produce the contract's 100 Hz grid from sorted chunks (see module doc)."""

    def __init__(self, native_rate_hz: float, channels: int) -> None:
        self._width = max(1, round(native_rate_hz / MODEL_RATE_HZ))
        self._channels = channels
        self._carry_t = np.empty(0)
        self._carry_v = np.empty((0, channels))
        self._last_src: tuple[float, F64] | None = None
        self._next_k = 0
        self._last_t_s: float | None = None

    def push(self, t_s: F64, values: F64) -> GridBlock:
        """Add sorted samples (times since the first sample); return new grid."""
        if len(t_s) == 0:
            return self._empty()
        self._last_t_s = float(t_s[-1])
        t = np.concatenate([self._carry_t, t_s])
        v = np.concatenate([self._carry_v, values])
        width = self._width
        if len(t) < width:
            self._carry_t, self._carry_v = t, v
            return self._empty()

        # Boxcar averages of every complete span, stamped at its middle.
        if width > 1:
            cumsum = np.empty((len(v) + 1, self._channels))
            cumsum[0] = 0.0
            np.cumsum(v, axis=0, out=cumsum[1:])
            src_v = (cumsum[width:] - cumsum[:-width]) / width
            src_t = (t[: len(src_v)] + t[width - 1 :]) / 2.0
            keep = width - 1
            self._carry_t, self._carry_v = t[len(t) - keep :], v[len(v) - keep :]
        else:
            src_t, src_v = t, v
            self._carry_t = np.empty(0)
            self._carry_v = np.empty((0, self._channels))

        # Grid points up to the newest source point are now fixed.
        if self._last_src is not None:
            src_t = np.concatenate([[self._last_src[0]], src_t])
            src_v = np.vstack([self._last_src[1][None, :], src_v])
        self._last_src = (float(src_t[-1]), src_v[-1].copy())
        stop = int(np.floor(src_t[-1] * MODEL_RATE_HZ)) + 1
        return self._interpolate(stop, src_t, src_v)

    def finish(self) -> GridBlock:
        """Return the grid points after the last source point (end of stream)."""
        if self._last_t_s is None or self._last_src is None:
            return self._empty()
        stop = int(np.floor(self._last_t_s * MODEL_RATE_HZ)) + 1
        src_t = np.array([self._last_src[0]])
        src_v = self._last_src[1][None, :]
        return self._interpolate(stop, src_t, src_v)

    def _interpolate(self, stop: int, src_t: F64, src_v: F64) -> GridBlock:
        start = self._next_k
        if stop <= start:
            return self._empty()
        grid = np.arange(start, stop) / MODEL_RATE_HZ
        out = np.empty((len(grid), self._channels))
        for channel in range(self._channels):
            out[:, channel] = np.interp(grid, src_t, src_v[:, channel])
        self._next_k = stop
        return GridBlock(start, out)

    def _empty(self) -> GridBlock:
        return GridBlock(self._next_k, np.empty((0, self._channels)))
