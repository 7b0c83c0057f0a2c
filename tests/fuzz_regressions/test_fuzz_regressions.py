"""Inputs the fuzzers found, each pinned to the behaviour the contract asks.

A finding whose fix is pending in someone else's module is marked
``xfail(strict=True)`` with the exception it raises today: the test turns
red the day the fix lands, and the mark must go then.

Inputs live in ``inputs/`` as valid files (CRCs already repaired), so they
reproduce without the harness: ``firmware-bridge decode FILE`` or
``python -m fuzz.run --target pipeline --reproduce FILE``.
"""

from __future__ import annotations

import io
import shutil
import struct
import tracemalloc
from pathlib import Path

import pytest

from edge_agent.processing.errors import BadInputError, ImplausibleTimeError
from edge_agent.processing.pipeline import ProcessOptions, process_log
from firmware_bridge.logformat import LogFormatError, LogReader
from fuzz.targets import load_target
from fuzz.targets._logs import build_log

pytestmark = pytest.mark.timeout(120)

INPUTS = Path(__file__).resolve().parent / "inputs"
_OPTIONS = ProcessOptions(writer_threads=1, fsync=False)

# Finding 1 (pipeline target, 2026-12-04): a clock-valid header whose
# start_utc_us is 578210752303423488 us (year 20292). The decoder accepts it;
# processing raises a bare ValueError in crash.utc_text from
# report.build_analytics, and LogHeader.start_utc (firmware-bridge decode)
# raises the same. Fixed: _parse_header refuses start_utc_us outside
# 2000-2100 UTC as AbsurdLengthError (offset 60, field start_utc_us).
START_UTC_LOG = INPUTS / "start-utc-year-20292.bin"


def _process(tmp_path: Path, source: Path) -> None:
    log = tmp_path / source.name
    shutil.copyfile(source, log)
    process_log(log, "rider-1", "suit-1", tmp_path / "out", None, options=_OPTIONS)


def test_start_utc_input_is_what_the_finding_says() -> None:
    data = START_UTC_LOG.read_bytes()
    (start_utc_us,) = struct.unpack_from("<q", data, 60)
    (flags,) = struct.unpack_from("<H", data, 84)
    assert start_utc_us == 578_210_752_303_423_488
    assert flags & 0x0001  # clock valid
    try:
        reader = LogReader(io.BytesIO(data))
    except LogFormatError:
        return  # the decoder refuses it: the fix has landed
    assert sum(len(block.records) for block in reader.blocks()) == 16


def test_pipeline_refuses_start_utc_beyond_year_9999_as_bad_input(
    tmp_path: Path,
) -> None:
    with pytest.raises(BadInputError):
        _process(tmp_path, START_UTC_LOG)


def test_decoded_header_start_utc_never_raises() -> None:
    try:
        reader = LogReader(io.BytesIO(START_UTC_LOG.read_bytes()))
    except LogFormatError:
        return
    assert reader.header.start_utc is not None


def test_pipeline_harness_passes_start_utc_input() -> None:
    load_target("pipeline").one_input(START_UTC_LOG.read_bytes())


# Not a finding: the pipeline run of 2026-12-04 (code at c2866e1) stopped on
# an out-of-memory report with this 6.7 KB log, whose IMU counter jumps by
# 1,842 s. Replayed alone it peaked at 186 MB in 2.1 s; the memory was the
# fuzzer's own growth (see fuzz/README.md, Limits). Since d4167a7 the
# cleaner refuses the jump; the input stays as a time-line regression.
COUNTER_JUMP_LOG = INPUTS / "counter-jump-30-min.bin"


def test_counter_jump_of_half_an_hour_is_refused_as_implausible(
    tmp_path: Path,
) -> None:
    with pytest.raises(ImplausibleTimeError, match=r"1842\.3 s"):
        _process(tmp_path, COUNTER_JUMP_LOG)


@pytest.mark.parametrize("name", ["suitlog", "pipeline"])
def test_harness_passes_counter_jump_input(name: str) -> None:
    load_target(name).one_input(COUNTER_JUMP_LOG.read_bytes())


# Finding 2 (pipeline target, 2026-12-04): the run's slowest input, a 6.7 KB
# log of 400 samples whose IMU counter jumps span 2.7 h, took 3.5 s to
# process: the 100 Hz grid and the AHRS run over every gap. Within the
# cleaner's limits (steps <= 600 s, span <= 24 h) a 2,492-byte log of 146
# samples 590 s apart processed in 47 s at a 1 GB peak RSS. Memory follows
# the time span, not the samples. This 228-byte log (7 samples, 59 min) is
# the small case; before the fix its traced peak measured 30-51 MiB.
SPARSE_LOG = INPUTS / "sparse-7-samples-59-min.bin"
# What a 228-byte log may make processing allocate: a 4-second, 4,000-sample
# log peaks at about 2 MiB once the pipeline is warm.
SPARSE_PEAK_BOUND_BYTES = 8 * 1024 * 1024


def test_sparse_log_cannot_make_processing_allocate_by_time_span(
    tmp_path: Path,
) -> None:
    warm_log = tmp_path / "warm.bin"
    warm_log.write_bytes(build_log(400, rate_hz=200.0))
    (tmp_path / "warm").mkdir()
    _process(tmp_path / "warm", warm_log)

    tracemalloc.start()
    try:
        _process(tmp_path, SPARSE_LOG)
    except BadInputError:
        pass  # refusing a log this sparse is one acceptable fix
    finally:
        _, peak_bytes = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    assert peak_bytes < SPARSE_PEAK_BOUND_BYTES, (
        f"a {SPARSE_LOG.stat().st_size}-byte log made processing allocate "
        f"{peak_bytes / 2**20:.0f} MiB"
    )
