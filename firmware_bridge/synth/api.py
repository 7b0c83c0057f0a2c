"""The synthesiser's entry points: whole rides in memory, or written as logs.

``write_ride`` streams chunks through ``LogWriter``, one IMU block at a time:
before each block it queues the event and GNSS records whose sample falls in
that block, so they are written right after the IMU block covering their
time (see docs/log-format.md). The log is written to ``<path>.partial`` and
renamed when complete, then the truth goes beside it.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from firmware_bridge.logformat import EVENT_DTYPE, GNSS_DTYPE, LogHeader, LogWriter

from .chunks import SampleTruth, SynthChunk, iter_plan_chunks
from .ride import plan_ride
from .spec import RideSpec
from .truth import RideTruth, TruthAccumulator, truth_path

__all__ = ["SynthRide", "synthesise", "write_ride"]

_LOGGER = logging.getLogger(__name__)

# Samples per IMU block, as the suit firmware writes them (1 s at 1 kHz).
SAMPLES_PER_BLOCK = 1024
# synthesise() keeps everything in memory; refuse what would not fit easily
# (about 1 GB of arrays): use iter_ride_chunks or write_ride instead.
MAX_IN_MEMORY_SAMPLES = 20_000_000

ProgressCallback = Callable[[int, int], None]


@dataclass(frozen=True)
class SynthRide:
    """A whole synthetic ride in memory: the log's content and its truth."""

    spec: RideSpec
    header: LogHeader
    t_s: npt.NDArray[np.float64]
    t_us: npt.NDArray[np.uint32]
    accel_g: npt.NDArray[np.float32]
    gyro_dps: npt.NDArray[np.float32]
    mag_ut: npt.NDArray[np.float32] | None
    activity: npt.NDArray[np.uint8]
    sample_truth: SampleTruth
    events: npt.NDArray[np.void]
    gnss: npt.NDArray[np.void]
    truth: RideTruth


def synthesise(spec: RideSpec) -> SynthRide:
    """Synthesise a (short) ride in memory.

    Raises:
        SynthSpecError: a field of ``spec`` is out of range, or the ride has
            more than ``MAX_IN_MEMORY_SAMPLES`` samples.
    """
    plan = plan_ride(spec)
    if plan.n_samples > MAX_IN_MEMORY_SAMPLES:
        from .spec import SynthSpecError

        raise SynthSpecError(
            f"ride of {plan.n_samples} samples is too long for synthesise() "
            f"(at most {MAX_IN_MEMORY_SAMPLES}); use iter_ride_chunks or write_ride"
        )
    accumulator = TruthAccumulator(plan)
    chunks = []
    for chunk in iter_plan_chunks(plan):
        accumulator.add(chunk)
        chunks.append(chunk)

    def join(name: str) -> Any:
        return np.concatenate([getattr(c, name) for c in chunks])

    def join_truth(name: str) -> Any:
        return np.concatenate([getattr(c.truth, name) for c in chunks])

    sample_truth = SampleTruth(
        **{name: join_truth(name) for name in SampleTruth.__dataclass_fields__}
    )
    return SynthRide(
        spec=spec,
        header=plan.header,
        t_s=join("t_s"),
        t_us=join("t_us"),
        accel_g=join("accel_g"),
        gyro_dps=join("gyro_dps"),
        mag_ut=join("mag_ut") if spec.with_mag else None,
        activity=join("activity"),
        sample_truth=sample_truth,
        events=np.concatenate([c.events for c in chunks] + [np.zeros(0, EVENT_DTYPE)]),
        gnss=np.concatenate([c.gnss for c in chunks] + [np.zeros(0, GNSS_DTYPE)]),
        truth=accumulator.finish(),
    )


def _write_chunk(writer: LogWriter, chunk: SynthChunk) -> None:
    """Write a chunk block by block, side records after their IMU block."""
    first = chunk.first_sample
    end = first + len(chunk)
    i = first
    while i < end:
        j = min(end, (i // SAMPLES_PER_BLOCK + 1) * SAMPLES_PER_BLOCK)
        events = (chunk.event_index >= i) & (chunk.event_index < j)
        if events.any():
            rows = chunk.events[events]
            writer.write_events(rows["t_us"], rows["kind"], rows["value"])
        fixes = (chunk.gnss_index >= i) & (chunk.gnss_index < j)
        if fixes.any():
            writer.write_gnss(chunk.gnss[fixes])
        a, b = i - first, j - first
        writer.write_imu(
            chunk.t_us[a:b],
            chunk.acc_raw[a:b],
            chunk.gyr_raw[a:b],
            None if chunk.mag_raw is None else chunk.mag_raw[a:b],
        )
        i = j


def write_ride(
    spec: RideSpec,
    path: str | os.PathLike[str],
    on_progress: ProgressCallback | None = None,
) -> RideTruth:
    """Write the ride's log to ``path`` and its truth to ``<path>.truth.json``.

    ``on_progress(samples_done, samples_total)`` is called after each chunk.

    Raises:
        SynthSpecError: a field of ``spec`` is out of range.
        OSError: the log or truth file cannot be written.
    """
    plan = plan_ride(spec)
    target = Path(path)
    partial = target.with_name(target.name + ".partial")
    accumulator = TruthAccumulator(plan)
    try:
        with open(partial, "wb") as stream:
            writer = LogWriter(stream, plan.header, samples_per_block=SAMPLES_PER_BLOCK)
            for chunk in iter_plan_chunks(plan):
                _write_chunk(writer, chunk)
                accumulator.add(chunk)
                if on_progress is not None:
                    on_progress(chunk.first_sample + len(chunk), plan.n_samples)
            writer.close()
        os.replace(partial, target)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    truth = accumulator.finish()
    truth.write_json(truth_path(target))
    _LOGGER.info(
        "%s: wrote %s (%d samples, %.1f s, %d bytes)",
        spec.suit_serial,
        target,
        truth.samples,
        truth.duration_s,
        writer.bytes_written,
    )
    return truth


def ride_log_path(spec: RideSpec, folder: str | os.PathLike[str]) -> Path:
    """Return where a suit keeps the ride's log: ``<folder>/<log_id>.slog``.

    The emulated suit takes a file named by a UUID as that log's id, so the
    id it announces over BLE equals the one in the log's header.
    """
    return Path(folder) / f"{plan_ride(spec).header.log_id}.slog"
