"""Process one log: clean, orient, analyse, judge crashes, write CSV and JSON.

``process_log`` takes a suit log path; ``process_stream`` takes any source's
``StreamInfo`` and chunk iterator (the CSV import uses it). Both write
``{out_dir}/{log_id}.csv.gz`` and ``{out_dir}/{log_id}.json`` and return a
``ProcessResult``. Errors are those of ``errors``: ``BadInputError`` and its
subclasses mean quarantine the input, ``ProcessingEnvironmentError`` means
retry later; a failed run leaves no partial output behind.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from models.contract import MIN_NATIVE_RATE_HZ

from .clean import QualityCounters
from .crash import CrashDetector, CrashVerdict
from .csv_out import (
    DEFAULT_COMPRESSLEVEL,
    DEFAULT_WRITER_THREADS,
    Column,
    CsvSink,
    CsvSinkFactory,
    GzipCsvWriter,
)
from .errors import OutputWriteError
from .report import RideSeries, build_analytics
from .samples import SourceChunk, StreamInfo
from .stream import StageClock, StreamProcessor
from .suitlog import SuitLogSource
from .training_windows import TrainingWindowKeeper, TrainingWindows

__all__ = [
    "DEFAULT_CHUNK_S",
    "ProcessOptions",
    "ProcessResult",
    "process_log",
    "process_stream",
]

_LOGGER = logging.getLogger(__name__)

# Fifteen seconds per processing step: 15,000 samples at 1 kHz, a few MB per
# stage (peak memory grows with it), per-chunk overhead still negligible.
DEFAULT_CHUNK_S = 15.0


@dataclass(frozen=True)
class ProcessOptions:
    """How to process (defaults suit a 2-core gateway)."""

    chunk_s: float = DEFAULT_CHUNK_S
    compresslevel: int = DEFAULT_COMPRESSLEVEL
    writer_threads: int = DEFAULT_WRITER_THREADS
    fsync: bool = True
    write_json: bool = True
    # Keep a sample of the scored windows (and those around airbag events and
    # high scores) in the result for the federated-training window store.
    training_windows: bool = False
    # Another CSV sink (a benchmark's baseline, say) instead of the gzip
    # writer; it then owns compression, threads and fsync.
    csv_sink: CsvSinkFactory | None = None

    def make_sink(self, path: Path, columns: list[Column]) -> CsvSink:
        """Return the CSV sink these options ask for."""
        if self.csv_sink is not None:
            return self.csv_sink(path, columns)
        return GzipCsvWriter(
            path, columns, self.compresslevel, self.writer_threads, self.fsync
        )


@dataclass(frozen=True)
class ProcessResult:
    """What processing one log produced."""

    log_id: str
    csv_path: Path
    analytics_path: Path | None
    analytics: dict[str, Any]
    crash: CrashVerdict
    quality: QualityCounters
    samples: int
    csv_bytes: int
    # Wall seconds per stage in the calling thread, and the CPU seconds the
    # CSV writer's threads spent in parallel with them.
    stage_seconds: dict[str, float] = field(default_factory=dict)
    csv_thread_cpu_s: float = 0.0
    # Windows kept for federated training (ProcessOptions.training_windows).
    training: TrainingWindows | None = None


def process_log(
    path: Path,
    rider_id: str,
    suit_id: str,
    out_dir: Path,
    model: CrashDetector | None,
    *,
    options: ProcessOptions | None = None,
    log_id: str | None = None,
) -> ProcessResult:
    """Process a suit log file into CSV and analytics.

    Args:
        path: the suit log (format v1).
        rider_id, suit_id: identities written into the analytics.
        out_dir: where ``{log_id}.csv.gz`` and ``{log_id}.json`` go.
        model: the crash detector, or None (verdict ``null`` with a reason).
        options: chunk size, gzip level, threads, fsync.
        log_id: overrides the log id of the header.

    Raises:
        BadInputError: (subclasses) the log is corrupt or has no samples;
            the message names the file and byte offset.
        ProcessingEnvironmentError: the file cannot be read, the model cannot
            run or the output cannot be written.
    """
    with SuitLogSource(Path(path), log_id) as source:
        return process_stream(
            source.info,
            source.chunks(),
            rider_id=rider_id,
            suit_id=suit_id,
            out_dir=out_dir,
            model=model,
            options=options,
        )


def process_stream(
    info: StreamInfo,
    chunks: Iterable[SourceChunk],
    *,
    rider_id: str,
    suit_id: str,
    out_dir: Path,
    model: CrashDetector | None,
    options: ProcessOptions | None = None,
) -> ProcessResult:
    """Process any source's chunks (see ``process_log`` for the arguments).

    ``chunks`` yields SI-unit samples on an unwrapped microsecond time line
    (see ``samples``); errors it raises propagate unchanged.
    """
    options = options or ProcessOptions()
    out_dir = Path(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputWriteError(str(out_dir), "create directory", str(exc)) from exc
    csv_path = out_dir / f"{info.log_id}.csv.gz"
    clock = StageClock()
    scorer = None
    keeper = None
    if model is not None and info.sample_rate_hz >= MIN_NATIVE_RATE_HZ:
        if options.training_windows:
            keeper = TrainingWindowKeeper(model.threshold)
        scorer = model.scorer(keeper)
    processor = StreamProcessor(
        info,
        csv_path,
        chunk_s=options.chunk_s,
        scorer=scorer,
        clock=clock,
        sink=options.make_sink,
    )

    # Stream every chunk through the per-chunk stages.
    airbag_t_us: list[int] = []
    try:
        for chunk in _timed(chunks, clock):
            processor.feed(chunk)
            if keeper is not None and len(chunk.airbag_t_us):
                airbag_t_us += [int(t_us) for t_us in chunk.airbag_t_us]
            if airbag_t_us and keeper is not None and processor.t_first_us is not None:
                for t_us in airbag_t_us:
                    keeper.note_airbag((t_us - processor.t_first_us) / 1e6)
                airbag_t_us.clear()
        processor.finish()
    except BaseException:
        processor.abort()
        raise
    assert processor.t_first_us is not None and processor.t_last_us is not None

    # Whole-ride stages: crash verdict first, analytics leave crashes out.
    with clock.stage("model"):
        verdict = _judge(info, processor, model)
    with clock.stage("analytics"):
        series = None
        if processor.orientation is not None:
            series = RideSeries(
                processor.lean_deg.values,
                processor.yaw_rate_rads.values,
                processor.long_accel_mps2.values,
                processor.speed_mps.values,
            )
        analytics = build_analytics(
            info=info,
            rider_id=rider_id,
            suit_id=suit_id,
            samples=processor.samples,
            t_first_us=processor.t_first_us,
            t_last_us=processor.t_last_us,
            quality=processor.quality,
            gnss=processor.gnss,
            series=series,
            verdict=verdict,
            model=None if model is None else model.model_block,
        )
    analytics_path = None
    if options.write_json:
        analytics_path = out_dir / f"{info.log_id}.json"
        _write_json(analytics_path, analytics, options.fsync)

    _LOGGER.info(
        "suit %s log %s: processed %d samples (%.0f s) from %s in %.1f s, crash %s, "
        "quality %s",
        suit_id,
        info.log_id,
        processor.samples,
        analytics["duration_s"],
        info.source,
        sum(clock.seconds.values()),
        verdict.detected,
        processor.quality.as_dict(),
    )
    return ProcessResult(
        log_id=info.log_id,
        csv_path=csv_path,
        analytics_path=analytics_path,
        analytics=analytics,
        crash=verdict,
        quality=processor.quality,
        samples=processor.samples,
        csv_bytes=processor.writer.size_bytes,
        stage_seconds=dict(clock.seconds),
        csv_thread_cpu_s=processor.writer.thread_cpu_s,
        training=None
        if keeper is None or verdict.detected is None
        else keeper.finish(),
    )


def _timed(chunks: Iterable[SourceChunk], clock: StageClock) -> Iterator[SourceChunk]:
    """Yield source chunks, timing the source's own work as ``decode``."""
    iterator = iter(chunks)
    while True:
        with clock.stage("decode"):
            chunk = next(iterator, None)
        if chunk is None:
            return
        yield chunk


def _judge(
    info: StreamInfo, processor: StreamProcessor, model: CrashDetector | None
) -> CrashVerdict:
    if info.sample_rate_hz < MIN_NATIVE_RATE_HZ:
        return CrashVerdict(
            None,
            reason=(
                f"sampled at {info.sample_rate_hz:.3g} Hz, below the "
                f"{MIN_NATIVE_RATE_HZ:.0f} Hz the crash model needs"
            ),
        )
    if model is None:
        return CrashVerdict(None, reason="no crash model is installed")
    assert processor.scorer is not None
    start_utc_us = None
    if info.start_utc_us is not None and processor.t_first_us is not None:
        start_utc_us = info.start_utc_us + processor.t_first_us - info.clock_origin_us
    return processor.scorer.finish(processor.peaks.peaks.values, start_utc_us)


def _write_json(path: Path, document: dict[str, Any], fsync: bool) -> None:
    partial = path.with_name(path.name + ".partial")
    try:
        with open(partial, "w", encoding="utf-8") as stream:
            json.dump(document, stream, indent=2)
            stream.write("\n")
            stream.flush()
            if fsync:
                os.fsync(stream.fileno())
        os.replace(partial, path)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise OutputWriteError(str(path), "write", str(exc)) from exc
