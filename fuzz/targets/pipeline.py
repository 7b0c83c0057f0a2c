"""Fuzz target ``pipeline``: ``process_log`` on a fuzzed suit log, no model.

The whole processing path an unattended agent runs on a pulled log: source,
cleaner, resampler, orientation, CSV and analytics writers. Each input (as
given and with its CRCs repaired) is written to a scratch file and processed
into a scratch folder, with fsync off and one writer thread.

Contract (``edge_agent/processing/pipeline.py``): a bad log raises a
``BadInputError`` subclass, which the agent quarantines; anything else (a
``ProcessingEnvironmentError`` on a healthy scratch disk, or any other
exception) would make the agent retry a log that can never succeed or stop.
Time and memory are bounded by libFuzzer's -timeout and -rss_limit_mb.
"""

from __future__ import annotations

import contextlib

from edge_agent.processing import suitlog
from edge_agent.processing.errors import BadInputError
from edge_agent.processing.pipeline import ProcessOptions, process_log

from ._common import (
    ContractViolation,
    KnownFinding,
    raised_in,
    scratch_dir,
    suppressed,
)
from ._logs import LOG_DICTIONARY, build_log, log_seeds, repair_crcs

__all__ = ["DICTIONARY", "KNOWN_FINDINGS", "MAX_LEN", "one_input", "seeds"]

# 16 KiB: about a thousand samples in small blocks, enough to reach every
# stage, and small enough that one input processes in milliseconds.
MAX_LEN = 16 * 1024
DICTIONARY = LOG_DICTIONARY
# Several chunks from small inputs (see ``fuzz.targets.suitlog``).
GROUP_SAMPLES = 256
suitlog.GROUP_SAMPLES = GROUP_SAMPLES
# fsync off: the scratch folder is in memory and durability is not tested.
_OPTIONS = ProcessOptions(writer_threads=1, fsync=False)

# Findings reported and pending a fix; ``fuzz.run --suppress NAME`` lets them
# pass so a run can look further (tests/fuzz_regressions keeps each one).
KNOWN_FINDINGS: dict[str, KnownFinding] = {
    # A clock-valid header whose start_utc_us lies beyond datetime's years
    # 1..9999: building the analytics' UTC text raises ValueError.
    "start-utc-out-of-range": lambda exc: (
        isinstance(exc, ValueError | OverflowError | OSError)
        and raised_in(exc, "utc_text")
    ),
}


def _one(data: bytes) -> None:
    scratch = scratch_dir("pipeline")
    path = scratch / "input.bin"
    out_dir = scratch / "out"
    path.write_bytes(data)
    try:
        result = process_log(
            path, "fuzz-rider", "fuzz-suit", out_dir, None, options=_OPTIONS
        )
    except BadInputError:
        return
    except Exception as exc:
        if suppressed(exc, KNOWN_FINDINGS):
            return
        raise
    finally:
        for produced in out_dir.glob("*") if out_dir.is_dir() else ():
            with contextlib.suppress(OSError):
                produced.unlink()
    if result.samples <= 0:
        raise ContractViolation(f"processed a log of {result.samples} samples")


def one_input(data: bytes) -> None:
    """Process ``data`` as a suit log; allow only BadInputError."""
    repaired = repair_crcs(data)
    for candidate in (data,) if repaired == data else (data, repaired):
        _one(candidate)


def seeds() -> dict[str, bytes]:
    """Return valid logs at the rates the pipeline treats differently."""
    logs = log_seeds()
    logs["orientation-200hz"] = build_log(
        400, rate_hz=200.0, samples_per_block=64, gnss_fixes=3, seed=7
    )
    return logs
