"""Clean a sample stream: unwrap the suit counter, reorder, drop repeats, count.

Two stateful pieces, both fed chunk by chunk with results that do not depend
on where the chunks are cut:

``CounterUnwrapper`` turns the suit's u32 microsecond counter (it wraps every
2**32 µs, about 71.6 minutes) into an int64 time line. Each step between two
consecutive counter values is taken modulo 2**32 and read as signed, so a
sample that arrives slightly out of order steps back instead of looking like a
wrap. A real forward jump longer than 2**31 µs (35.8 minutes without a single
sample) cannot be told from a backward step; the suit never pauses that long
inside one log.

``SampleCleaner`` restores time order and drops repeats. It keeps the samples
of the last ``REORDER_HORIZON_US`` pending, so a sample that arrives late by
less than that is put back in its place (counted in ``out_of_order``); a sample
later than that is dropped (also counted in ``out_of_order``); a sample whose
time stamp was already seen is dropped (counted in ``duplicates``). Gaps (a
step longer than ``GAP_PERIODS`` nominal periods) and saturated samples are
counted on the cleaned stream. A step longer than ``MAX_STEP_US`` or a span
longer than ``MAX_SPAN_US`` raises ``ImplausibleTimeError``.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass

import numpy as np
import numpy.typing as npt

from .errors import ImplausibleTimeError
from .samples import SampleChunk

__all__ = [
    "GAP_PERIODS",
    "MAX_SPAN_US",
    "MAX_STEP_US",
    "REORDER_HORIZON_US",
    "CounterUnwrapper",
    "QualityCounters",
    "SampleCleaner",
    "place_counter",
]

_LOGGER = logging.getLogger(__name__)

# A step this many nominal periods long means at least one sample is missing
# (1.5 leaves room for clock jitter while catching a single lost sample).
GAP_PERIODS = 1.5
# How late a sample may arrive and still be put back in order. Firmware
# swaps at most two neighbouring blocks (1024 samples, about 1 s each at
# 1 kHz) when a flash write is retried, which makes the first sample of the
# displaced block about 2 s late; 3 s covers that with margin and keeps the
# pending buffer at 3,000 samples at 1 kHz.
REORDER_HORIZON_US = 3_000_000

# A suit starts a new log when it stops recording; inside one log a step of
# ten minutes without a sample, or a span of a day, is a broken time base
# (and would make the 100 Hz grid, which spans the gaps, needlessly large).
MAX_STEP_US = 600_000_000
MAX_SPAN_US = 24 * 3600 * 1_000_000
# A log that after 15 minutes holds under a tenth of the samples its nominal
# rate implies is mostly time gaps: memory and time follow the span (the
# 100 Hz grid and the AHRS run over every gap), so a few hundred bytes could
# cost a gigabyte. Found by fuzzing; refused as implausible instead.
MIN_COVERAGE = 0.1
COVERAGE_GRACE_US = 15 * 60 * 1_000_000

_COUNTER_MODULUS = 1 << 32
_HALF_COUNTER = 1 << 31


@dataclass
class QualityCounters:
    """What cleaning found in one stream (the analytics ``quality`` block)."""

    duplicates: int = 0
    gaps: int = 0
    out_of_order: int = 0
    saturated_samples: int = 0
    counter_wraps: int = 0
    rejected_rows: int = 0

    def as_dict(self) -> dict[str, int]:
        """Return the counters under their ``ride-analytics/1`` names."""
        return asdict(self)


class CounterUnwrapper:
    """Unwrap a u32 microsecond counter into int64 microseconds."""

    def __init__(self, counter_start_us: int) -> None:
        self._last_raw = int(counter_start_us) % _COUNTER_MODULUS
        self._last_us = int(counter_start_us) % _COUNTER_MODULUS
        self._wrap_level = 0
        self.wraps = 0

    def unwrap(self, raw_us: npt.NDArray[np.uint32]) -> npt.NDArray[np.int64]:
        """Return unwrapped times of consecutive IMU samples and advance."""
        if len(raw_us) == 0:
            return np.empty(0, dtype=np.int64)
        raw = raw_us.astype(np.int64)
        previous = np.empty_like(raw)
        previous[0] = self._last_raw
        previous[1:] = raw[:-1]
        step = np.mod(raw - previous, _COUNTER_MODULUS)
        step[step >= _HALF_COUNTER] -= _COUNTER_MODULUS
        unwrapped = self._last_us + np.cumsum(step)
        self._last_raw = int(raw[-1])
        self._last_us = int(unwrapped[-1])

        # A wrap is the counter's high word reaching a new level; jitter back
        # and forth across the boundary counts once.
        level = int(unwrapped.max()) >> 32
        if level > self._wrap_level:
            self.wraps += level - self._wrap_level
            self._wrap_level = level
        return unwrapped

    @property
    def reference(self) -> tuple[int, int]:
        """Return the last raw counter value and its unwrapped time."""
        return self._last_raw, self._last_us


def place_counter(
    raw_us: npt.NDArray[np.uint32], reference_raw: int, reference_us: int
) -> npt.NDArray[np.int64]:
    """Unwrap side-record counters (events, GNSS) near a reference sample."""
    step = np.mod(raw_us.astype(np.int64) - reference_raw, _COUNTER_MODULUS)
    step[step >= _HALF_COUNTER] -= _COUNTER_MODULUS
    return reference_us + step


class SampleCleaner:
    """Sort, de-duplicate and count a stream chunk by chunk (see module doc)."""

    def __init__(
        self,
        nominal_rate_hz: float,
        quality: QualityCounters,
        source: str = "<stream>",
        reorder_horizon_us: int = REORDER_HORIZON_US,
    ) -> None:
        self._gap_us = GAP_PERIODS * 1e6 / nominal_rate_hz
        self._rate_hz = nominal_rate_hz
        self._quality = quality
        self._source = source
        self._horizon_us = reorder_horizon_us
        self._pending: SampleChunk | None = None
        # Whether each pending sample arrived late; counted once, when final.
        self._pending_late = np.zeros(0, dtype=np.bool_)
        self._max_seen_us: int | None = None
        self._last_emitted_us: int | None = None
        self._first_emitted_us: int | None = None
        self._emitted = 0

    def push(self, chunk: SampleChunk) -> SampleChunk | None:
        """Take a chunk in arrival order; return the samples now final, sorted."""
        if len(chunk) == 0:
            return None
        t = chunk.t_us

        # Late: earlier than a sample already seen. Too late: beyond the horizon.
        prior = int(t[0]) - 1 if self._max_seen_us is None else self._max_seen_us
        seen = np.maximum.accumulate(t)
        before = np.empty_like(t)
        before[0] = prior
        np.maximum(seen[:-1], prior, out=before[1:])
        late = t < before
        self._max_seen_us = max(prior, int(seen[-1]))
        if late.any():
            too_late = t < before - self._horizon_us
            if too_late.any():
                count = int(too_late.sum())
                self._quality.out_of_order += count
                _LOGGER.debug(
                    "%s: dropped %d samples late by more than %d us",
                    self._source,
                    count,
                    self._horizon_us,
                )
                keep = np.flatnonzero(~too_late)
                chunk, late = chunk.take(keep), late[keep]

        # Samples older than the horizon behind the newest are final.
        combined, late = self._join_pending(chunk, late)
        horizon_start = self._max_seen_us - self._horizon_us
        cut = int(np.searchsorted(combined.t_us, horizon_start))
        self._pending = combined.take(slice(cut, None))
        self._pending_late = late[cut:]
        self._quality.out_of_order += int(late[:cut].sum())
        return self._emit(combined.take(slice(0, cut)))

    def finish(self) -> SampleChunk | None:
        """Return every sample still pending (end of stream)."""
        pending, self._pending = self._pending, None
        if pending is None or len(pending) == 0:
            return None
        self._quality.out_of_order += int(self._pending_late.sum())
        self._pending_late = np.zeros(0, dtype=np.bool_)
        return self._emit(pending)

    def _join_pending(
        self, chunk: SampleChunk, late: npt.NDArray[np.bool_]
    ) -> tuple[SampleChunk, npt.NDArray[np.bool_]]:
        if self._pending is not None and len(self._pending):
            combined = SampleChunk.concat([self._pending, chunk])
            late = np.concatenate([self._pending_late, late])
        else:
            combined = chunk
        t = combined.t_us
        if len(t) > 1 and not (np.diff(t) > 0).all():
            # A stable sort keeps the first arrival of a repeated time stamp.
            order = np.argsort(t, kind="stable")
            t_sorted = t[order]
            first = np.ones(len(order), dtype=np.bool_)
            first[1:] = t_sorted[1:] != t_sorted[:-1]
            self._quality.duplicates += len(order) - int(first.sum())
            order = order[first]
            combined, late = combined.take(order), late[order]
        return combined, late

    def _emit(self, final: SampleChunk) -> SampleChunk | None:
        if len(final) == 0:
            return None
        t = final.t_us
        previous = t[0] if self._last_emitted_us is None else self._last_emitted_us
        steps = np.diff(t, prepend=previous)
        self._check_time(t, steps)
        self._quality.gaps += int((steps > self._gap_us).sum())
        self._last_emitted_us = int(t[-1])
        self._quality.saturated_samples += int(final.saturation.sum())
        self._emitted += len(final)
        return final

    def _check_time(
        self, t: npt.NDArray[np.int64], steps: npt.NDArray[np.int64]
    ) -> None:
        """Refuse steps and spans no ride has (see ``MAX_STEP_US``)."""
        if self._first_emitted_us is None:
            self._first_emitted_us = int(t[0])
        longest = int(np.argmax(steps))
        if steps[longest] > MAX_STEP_US:
            raise ImplausibleTimeError(
                self._source,
                f"sample {self._emitted + longest} (t = {int(t[longest]) / 1e6:.6f} s)",
                f"time jumps {steps[longest] / 1e6:.1f} s after the previous sample; "
                f"at most {MAX_STEP_US / 1e6:.0f} s is plausible (check the time unit)",
            )
        span_us = int(t[-1]) - self._first_emitted_us
        if span_us > MAX_SPAN_US:
            raise ImplausibleTimeError(
                self._source,
                f"sample {self._emitted + len(t) - 1}",
                f"the log spans {span_us / 3.6e9:.1f} h; at most "
                f"{MAX_SPAN_US / 3.6e9:.0f} h is plausible (check the time unit)",
            )
        samples = self._emitted + len(t)
        expected = span_us / 1e6 * self._rate_hz
        if span_us > COVERAGE_GRACE_US and samples < MIN_COVERAGE * expected:
            raise ImplausibleTimeError(
                self._source,
                f"sample {samples - 1}",
                f"{samples} samples over {span_us / 6e7:.1f} min is under "
                f"{MIN_COVERAGE:.0%} of the {self._rate_hz:g} Hz the log declares "
                "(mostly gaps; check the time unit or the rate)",
            )
