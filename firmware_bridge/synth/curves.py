"""Smooth piecewise curves through knots, evaluated over whole sample arrays.

Speed, yaw rate and posture are planned as knots ``(t_k, y_k)``; between two
knots the value moves along a raised cosine, so every curve is continuous with
a continuous first derivative at the knots' ends of a ramp and the rate is zero
at every knot. Value, rate and running integral are closed-form, so a chunk of
any length is evaluated with a handful of NumPy operations and chunk borders
leave no seams: speed is the integral of the acceleration curve and heading
the integral of the yaw-rate curve, both exact.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

__all__ = ["EasedCurve", "KnotList", "StepFunction"]

F64 = npt.NDArray[np.float64]

# Two knots closer than this are the same instant (plans work in seconds).
_SAME_TIME_S = 1e-9


class EasedCurve:
    """A curve through knots with raised-cosine easing between them.

    Before the first knot the curve holds the first value, after the last knot
    the last value. ``integral`` is measured from the first knot.
    """

    def __init__(self, t_s: Sequence[float], y: Sequence[float]) -> None:
        t = np.asarray(t_s, dtype=np.float64)
        v = np.asarray(y, dtype=np.float64)
        if t.ndim != 1 or t.shape != v.shape or len(t) == 0:
            raise ValueError("knots: need matching 1-D time and value sequences")
        if len(t) == 1:
            t = np.array([t[0], t[0] + 1.0])
            v = np.array([v[0], v[0]])
        if np.any(np.diff(t) <= 0):
            raise ValueError("knots: times must increase strictly")
        self.t_s = t
        self.y = v
        self._span = np.diff(t)
        self._step = np.diff(v)
        self._cum = np.concatenate(
            [[0.0], np.cumsum((v[:-1] + v[1:]) / 2 * self._span)]
        )

    def _locate(self, t: F64) -> tuple[npt.NDArray[np.intp], F64, F64]:
        k = np.clip(
            np.searchsorted(self.t_s, t, side="right") - 1, 0, len(self.t_s) - 2
        )
        span = self._span[k]
        tau = np.clip(t - self.t_s[k], 0.0, span)
        return k, tau, span

    def value(self, t: F64) -> F64:
        """Return the curve at times ``t``."""
        k, tau, span = self._locate(t)
        return self.y[k] + self._step[k] * (1.0 - np.cos(np.pi * tau / span)) / 2.0

    def rate(self, t: F64) -> F64:
        """Return the time derivative at ``t`` (zero outside the knots)."""
        k, tau, span = self._locate(t)
        return self._step[k] * np.pi / (2.0 * span) * np.sin(np.pi * tau / span)

    def integral(self, t: F64) -> F64:
        """Return the integral from the first knot to ``t``."""
        k, tau, span = self._locate(t)
        eased = tau / 2.0 - span / (2.0 * np.pi) * np.sin(np.pi * tau / span)
        inside = self._cum[k] + self.y[k] * tau + self._step[k] * eased
        before = self.y[0] * np.minimum(t - self.t_s[0], 0.0)
        after = self.y[-1] * np.maximum(t - self.t_s[-1], 0.0)
        total: F64 = inside + before + after
        return total


class KnotList:
    """Knots appended in time order while a plan is built."""

    def __init__(self, t0_s: float, y0: float = 0.0) -> None:
        self.t_s = [t0_s]
        self.y = [y0]

    @property
    def last_t_s(self) -> float:
        """Return the time of the last knot."""
        return self.t_s[-1]

    @property
    def last_y(self) -> float:
        """Return the value of the last knot."""
        return self.y[-1]

    def add(self, t_s: float, y: float) -> None:
        """Append a knot; a knot at the last knot's time must repeat its value."""
        if t_s < self.t_s[-1] - _SAME_TIME_S:
            raise ValueError(f"knot at {t_s:.6f} s is before {self.t_s[-1]:.6f} s")
        if t_s - self.t_s[-1] <= _SAME_TIME_S:
            if abs(y - self.y[-1]) > 1e-12:
                raise ValueError(f"two values for the knot at {t_s:.6f} s")
            return
        self.t_s.append(t_s)
        self.y.append(y)

    def curve(self) -> EasedCurve:
        """Return the curve through the knots so far."""
        return EasedCurve(self.t_s, self.y)


class StepFunction:
    """A piecewise-constant integer code that changes at given times."""

    def __init__(self, t_s: Sequence[float], codes: Sequence[int]) -> None:
        self.t_s = np.asarray(t_s, dtype=np.float64)
        self.codes = np.asarray(codes, dtype=np.int64)
        if len(self.t_s) == 0 or self.t_s.shape != self.codes.shape:
            raise ValueError("steps: need matching non-empty times and codes")

    def at(self, t: F64) -> npt.NDArray[np.int64]:
        """Return the code in force at each time (the first code before)."""
        k = np.clip(np.searchsorted(self.t_s, t, side="right") - 1, 0, None)
        return self.codes[k]
