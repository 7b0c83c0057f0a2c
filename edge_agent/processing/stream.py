"""Drive the per-chunk stages of the pipeline and keep their small state.

Data flows, per chunk of about ``chunk_s`` seconds::

    source chunk ─> cleaner ─> native samples ─────────────────> CSV rows
                        │         │                                 ^
                        │         └─> 100 Hz grid ─> orientation ─> lean
                        │                │       (imufusion)
                        │                └─> crash scorer (LiteRT, batched)
                        └─> acceleration peaks per 10 ms (whole ride)

Each stage lags a little: the cleaner keeps its reorder horizon, the
resampler half a boxcar, the orientation waits until the GNSS fixes around
a moment are complete (``MAX_FIX_GAP_S`` behind the newest sample), the
scorer until a batch of windows is complete, and CSV rows wait for their
lean. Nothing else is held back, so memory is a few chunks of native samples
plus the whole-ride 100 Hz series (lean, yaw rate, acceleration, speed).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import numpy.typing as npt

from models.contract import MODEL_RATE_HZ

from .clean import QualityCounters, SampleCleaner
from .crash import CrashScorer
from .csv_out import CsvSinkFactory
from .errors import NoSamplesError
from .gnss import MAX_FIX_GAP_S, GnssTrack
from .orientation import OrientationEstimator
from .resample import GridBlock, StreamingResampler
from .rows import RowAssembler, csv_columns
from .samples import STANDARD_GRAVITY_MPS2, SampleChunk, SourceChunk, StreamInfo
from .series import BlockSeries, PeakTracker

__all__ = ["MIN_ORIENTATION_RATE_HZ", "StageClock", "StreamProcessor"]

_LOGGER = logging.getLogger(__name__)

# Below this native rate the gyroscope cannot be integrated through a
# rider's movements (they reach several hertz); lean is then unknown.
MIN_ORIENTATION_RATE_HZ = 20.0
_GRID_CELL_US = round(1e6 / MODEL_RATE_HZ)
_G = np.float32(STANDARD_GRAVITY_MPS2)


class StageClock:
    """Accumulate wall time per pipeline stage (for logs and benchmarks)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Time the enclosed block under ``name``."""
        start = time.perf_counter()
        try:
            yield
        finally:
            elapsed = time.perf_counter() - start
            self.seconds[name] = self.seconds.get(name, 0.0) + elapsed


class StreamProcessor:
    """Run cleaning, resampling, orientation and CSV output over chunks."""

    def __init__(
        self,
        info: StreamInfo,
        csv_path: Path,
        *,
        chunk_s: float,
        scorer: CrashScorer | None,
        clock: StageClock,
        sink: CsvSinkFactory,
    ) -> None:
        self.info = info
        self.clock = clock
        self.quality = QualityCounters()
        self.gnss = GnssTrack()
        self.peaks = PeakTracker(_GRID_CELL_US, info.accel_full_scale_g)
        self.lean_deg = BlockSeries()
        self.yaw_rate_rads = BlockSeries()
        self.long_accel_mps2 = BlockSeries()
        self.speed_mps = BlockSeries()
        self.scorer = scorer
        self.samples = 0
        self.t_first_us: int | None = None
        self.t_last_us: int | None = None
        self.orientation = (
            OrientationEstimator(info.gyro_full_scale_dps)
            if info.sample_rate_hz >= MIN_ORIENTATION_RATE_HZ
            else None
        )

        self._chunk_us = chunk_s * 1e6
        self._cleaner = SampleCleaner(info.sample_rate_hz, self.quality, info.source)
        self._resampler = StreamingResampler(info.sample_rate_hz, 6)
        self._batch: list[SampleChunk] = []
        self._batch_start_us: int | None = None
        self._newest_us: int | None = None
        self._grid_pending: list[GridBlock] = []
        self._native_pending: list[SampleChunk] = []
        self._rows: RowAssembler | None = None
        self.writer = sink(csv_path, csv_columns(info))

    # -- input ---------------------------------------------------------------

    def feed(self, chunk: SourceChunk) -> None:
        """Take one source chunk; process once a batch spans ``chunk_s``."""
        self.quality.rejected_rows += chunk.rejected_rows
        self.quality.counter_wraps += chunk.counter_wraps
        self.gnss.add(chunk.fixes)
        samples = chunk.samples
        if len(samples) == 0:
            return
        newest = int(samples.t_us.max())
        self._newest_us = (
            newest if self._newest_us is None else max(self._newest_us, newest)
        )
        if self._batch_start_us is None:
            self._batch_start_us = int(samples.t_us[0])
        self._batch.append(samples)
        if newest - self._batch_start_us >= self._chunk_us:
            self._run_batch()
            self._advance(final=False)

    def finish(self) -> None:
        """Flush every stage at the end of the stream and close the CSV."""
        self._run_batch()
        with self.clock.stage("clean"):
            cleaned = self._cleaner.finish()
        if cleaned is not None:
            self._take_cleaned(cleaned)
        with self.clock.stage("resample"):
            self._queue_grid(self._resampler.finish())
        if self.samples == 0:
            raise NoSamplesError(
                self.info.source, "whole stream", "no valid sample to process"
            )
        self._advance(final=True)
        with self.clock.stage("csv"):
            self.writer.close()

    def abort(self) -> None:
        """Drop the partial CSV after a failure."""
        self.writer.abort()

    # -- stages --------------------------------------------------------------

    def _run_batch(self) -> None:
        if not self._batch:
            return
        batch, self._batch, self._batch_start_us = self._batch, [], None
        with self.clock.stage("clean"):
            cleaned = self._cleaner.push(SampleChunk.concat(batch))
        if cleaned is not None:
            self._take_cleaned(cleaned)

    def _take_cleaned(self, cleaned: SampleChunk) -> None:
        if self.t_first_us is None:
            self.t_first_us = int(cleaned.t_us[0])
            self._rows = RowAssembler(self.info, self.t_first_us)
        self.samples += len(cleaned)
        self.t_last_us = int(cleaned.t_us[-1])
        self._native_pending.append(cleaned)
        t_rel_us = cleaned.t_us - self.t_first_us
        with self.clock.stage("resample"):
            self.peaks.add(t_rel_us, cleaned.acc_mps2, cleaned.saturation)
            values = np.hstack([cleaned.acc_mps2, cleaned.gyr_rads]).astype(np.float64)
            self._queue_grid(self._resampler.push(t_rel_us / 1e6, values))

    def _queue_grid(self, grid: GridBlock) -> None:
        if len(grid) == 0:
            return
        if self.scorer is not None:
            model_rows = grid.values.astype(np.float32)
            model_rows[:, :3] /= _G
            with self.clock.stage("model"):
                self.scorer.push(model_rows)
        if self.orientation is not None:
            self._grid_pending.append(grid)

    def _advance(self, final: bool) -> None:
        """Run orientation as far as GNSS allows, then write what has lean."""
        if self.t_first_us is None:
            return
        if self.orientation is not None:
            with self.clock.stage("orientation"):
                self._orient(final)
            lean_until_s = (len(self.lean_deg) - 1) / MODEL_RATE_HZ
        else:
            lean_until_s = math.inf
        with self.clock.stage("csv"):
            self._write_rows(math.inf if final else lean_until_s)

    def _orient(self, final: bool) -> None:
        assert self.orientation is not None and self.t_first_us is not None
        stop_k = math.inf
        if not final and self.info.has_gnss and self._newest_us is not None:
            known_s = (self._newest_us - self.t_first_us) / 1e6 - MAX_FIX_GAP_S
            stop_k = math.floor(known_s * MODEL_RATE_HZ) + 1
        while self._grid_pending:
            block = self._grid_pending[0]
            take = len(block) if stop_k == math.inf else int(stop_k) - block.start
            if take <= 0:
                break
            if take < len(block):
                self._grid_pending[0] = GridBlock(
                    block.start + take, block.values[take:]
                )
                block = GridBlock(block.start, block.values[:take])
            else:
                self._grid_pending.pop(0)
            self._orient_block(block)

    def _orient_block(self, block: GridBlock) -> None:
        assert self.orientation is not None and self.t_first_us is not None
        t_us = self.t_first_us + block.t_s * 1e6
        speed, speed_rate = self.gnss.speed_at(t_us)
        out = self.orientation.update(
            block.start, block.values[:, :3], block.values[:, 3:], speed, speed_rate
        )
        self.lean_deg.append(out.lean_deg)
        self.yaw_rate_rads.append(out.yaw_rate_rads)
        self.long_accel_mps2.append(out.long_accel_mps2)
        self.speed_mps.append(speed)

    def _write_rows(self, until_s: float) -> None:
        if not self._native_pending or self._rows is None:
            return
        assert self.t_first_us is not None
        pending = SampleChunk.concat(self._native_pending)
        t_rel_s = (pending.t_us - self.t_first_us) / 1e6
        count = int(np.searchsorted(t_rel_s, until_s, side="right"))
        if count == 0:
            self._native_pending = [pending]
            return
        ready = pending.take(slice(0, count))
        rest = pending.take(slice(count, None))
        self._native_pending = [rest] if len(rest) else []
        lean = self._lean_at(t_rel_s[:count])
        self.writer.write(self._rows.rows(ready, lean, self.gnss.fixes))

    def _lean_at(self, t_rel_s: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        if self.orientation is None or len(self.lean_deg) == 0:
            return np.full(len(t_rel_s), np.nan)
        size = len(self.lean_deg)
        first = math.floor(t_rel_s[0] * MODEL_RATE_HZ) - 1
        lo = max(0, min(size - 1, first))
        hi = min(size, math.ceil(t_rel_s[-1] * MODEL_RATE_HZ) + 2)
        grid_s = np.arange(lo, hi) / MODEL_RATE_HZ
        lean = self.lean_deg.slice(lo, hi).astype(np.float64)
        return np.interp(t_rel_s, grid_s, lean)
