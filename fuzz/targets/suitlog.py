"""Fuzz target ``suitlog``: the processing layer's ``SuitLogSource``.

Each input (as given and with its CRCs repaired) is written to a scratch file
(``SuitLogSource`` opens a path; ``/dev/shm`` keeps it in memory where it
exists), read chunk by chunk, and the samples go through ``SampleCleaner`` as
the pipeline's first stage does. ``read_log`` reads the same file whole.

Contract: only ``CorruptLogError`` subclasses escape the source (it maps
every decoder error with ``map_log_format_error``), and a mapped error
carries the decoder's offset and field under the matching processing type;
the cleaner raises nothing but ``ImplausibleTimeError``. Properties: a
log the decoder reads whole yields exactly its IMU samples (from the source
and from ``read_log``), each chunk's arrays agree in length, and the cleaner
emits strictly increasing times.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import numpy as np

from edge_agent.processing import suitlog
from edge_agent.processing.clean import QualityCounters, SampleCleaner
from edge_agent.processing.errors import (
    CorruptLogError,
    ImplausibleTimeError,
    map_log_format_error,
)
from edge_agent.processing.samples import SampleChunk, SourceChunk
from edge_agent.processing.suitlog import SuitLogSource, is_suit_log
from firmware_bridge.logformat import BlockType, LogFormatError, LogReader, read_log

from ._common import ContractViolation, scratch_dir
from ._logs import LOG_DICTIONARY, build_log, log_seeds, repair_crcs

__all__ = ["DICTIONARY", "MAX_LEN", "one_input", "seeds"]

# Same bound as ``logformat``: a 64 KiB log already spans several chunks when
# its blocks are small, and keeps file writes cheap.
MAX_LEN = 64 * 1024
DICTIONARY = LOG_DICTIONARY
# The source groups 8,192 samples per chunk, more than a 64 KiB input holds;
# 256 lets small inputs span several chunks (the grouping is read at run
# time, and no result may depend on where chunks are cut).
GROUP_SAMPLES = 256
suitlog.GROUP_SAMPLES = GROUP_SAMPLES


def _scratch_file() -> Path:
    """Return the per-process path inputs are written to."""
    return scratch_dir("suitlog") / "input.bin"


def _decoder_view(data: bytes) -> tuple[int, LogFormatError | None]:
    """Return the IMU sample count the decoder reads and the error it stops on."""
    samples = 0
    try:
        reader = LogReader(io.BytesIO(data), source="<fuzz>")
        for block in reader.blocks():
            if block.kind == BlockType.IMU:
                samples += len(block.records)
    except LogFormatError as exc:
        return samples, exc
    return samples, None


def _check_chunk(chunk: SourceChunk) -> None:
    samples, fixes = chunk.samples, chunk.fixes
    n = len(samples)
    shapes = [samples.acc_mps2.shape, samples.gyr_rads.shape]
    if samples.mag_ut is not None:
        shapes.append(samples.mag_ut.shape)
    if any(shape != (n, 3) for shape in shapes) or len(samples.saturation) != n:
        raise ContractViolation(f"chunk of {n} samples has arrays of {shapes}")
    fix_lengths = {
        len(fixes.t_us),
        len(fixes.lat_deg),
        len(fixes.lon_deg),
        len(fixes.alt_m),
        len(fixes.speed_mps),
        len(fixes.course_deg),
    }
    if len(fix_lengths) != 1:
        raise ContractViolation(f"GNSS arrays of different lengths {fix_lengths}")


class _CleanerCheck:
    """Feed samples to a ``SampleCleaner`` and check what it emits.

    The cleaner may refuse a time line no ride has (``ImplausibleTimeError``,
    which the pipeline quarantines); after that it is fed nothing more, while
    the source is still read to its end.
    """

    def __init__(self, rate_hz: float, source: str) -> None:
        self._cleaner = SampleCleaner(rate_hz, QualityCounters(), source=source)
        self._last_us: int | None = None
        self.refused = False

    def push(self, samples: SampleChunk) -> None:
        """Clean one chunk of samples and check the emitted order."""
        self._step(lambda: self._cleaner.push(samples))

    def finish(self) -> None:
        """Flush the cleaner and check the emitted order."""
        self._step(self._cleaner.finish)

    def _step(self, clean: Callable[[], SampleChunk | None]) -> None:
        if self.refused:
            return
        try:
            final = clean()
        except ImplausibleTimeError:
            self.refused = True
            return
        if final is None or len(final) == 0:
            return
        t = final.t_us
        if self._last_us is not None and int(t[0]) <= self._last_us:
            raise ContractViolation(
                f"cleaner emitted {int(t[0])} us after {self._last_us} us"
            )
        if len(t) > 1 and not bool(np.all(np.diff(t) > 0)):
            raise ContractViolation("cleaner emitted times out of order")
        self._last_us = int(t[-1])


def _read_and_clean(path: Path) -> int:
    """Stream ``path`` through the source and the cleaner; return samples read."""
    read = 0
    with SuitLogSource(path) as source:
        cleaner = _CleanerCheck(source.info.sample_rate_hz, str(path))
        for chunk in source.chunks():
            _check_chunk(chunk)
            read += len(chunk.samples)
            cleaner.push(chunk.samples)
        cleaner.finish()
    return read


def _check_read_log(path: Path, samples: int, error: LogFormatError | None) -> None:
    """Check that ``read_log`` agrees with the streaming decoder."""
    try:
        whole = read_log(path)
    except LogFormatError as exc:
        if error is None or (exc.offset, exc.field) != (error.offset, error.field):
            raise ContractViolation(
                f"read_log raised {exc!r}; the stream decoder raised {error!r}"
            ) from exc
        return
    if error is not None or len(whole.imu) != samples:
        raise ContractViolation(
            f"read_log read {len(whole.imu)} samples; the stream decoder read "
            f"{samples} and raised {error!r}"
        )


def _one(data: bytes) -> None:
    path = _scratch_file()
    path.write_bytes(data)
    is_suit_log(path)
    expected_samples, decoder_error = _decoder_view(data)
    _check_read_log(path, expected_samples, decoder_error)
    try:
        read = _read_and_clean(path)
    except CorruptLogError as exc:
        if decoder_error is None:
            raise ContractViolation(
                f"source refused a log the decoder reads whole: {exc}"
            ) from exc
        mapped = map_log_format_error(decoder_error)
        if type(exc) is not type(mapped) or (exc.offset, exc.field) != (
            decoder_error.offset,
            decoder_error.field,
        ):
            raise ContractViolation(
                f"source raised {type(exc).__name__} ({exc}) for decoder error "
                f"{type(decoder_error).__name__} ({decoder_error})"
            ) from exc
        return
    if decoder_error is not None:
        raise ContractViolation(
            f"source read a log the decoder refuses: {decoder_error}"
        )
    if read != expected_samples:
        raise ContractViolation(
            f"source yielded {read} samples, the decoder reads {expected_samples}"
        )


def one_input(data: bytes) -> None:
    """Read ``data`` as a suit log file; allow only CorruptLogError."""
    repaired = repair_crcs(data)
    for candidate in (data,) if repaired == data else (data, repaired):
        _one(candidate)


def seeds() -> dict[str, bytes]:
    """Return valid logs, and one that spans several source chunks."""
    logs = log_seeds()
    logs["many-chunks-100hz"] = build_log(
        600, rate_hz=100.0, samples_per_block=64, gnss_fixes=2, seed=6
    )
    return logs
