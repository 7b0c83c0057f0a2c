"""Pieces every harness shares: the violation error, strict logging, reads.

A harness turns a broken contract into ``ContractViolation`` (an
``AssertionError`` raised explicitly, so ``python -O`` keeps the checks);
libFuzzer records any exception that escapes ``one_input`` as a crash.
"""

from __future__ import annotations

import io
import logging
import os
import traceback
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager

from fuzz import SUPPRESS_ENV

__all__ = [
    "BoundedReadStream",
    "ContractViolation",
    "KnownFinding",
    "StrictFormatHandler",
    "raised_in",
    "strict_logging",
    "suppressed",
]


class ContractViolation(AssertionError):
    """A parser broke its contract on some input (a fuzzing finding)."""


KnownFinding = Callable[[BaseException], bool]


def raised_in(exc: BaseException, function: str) -> bool:
    """Return True when ``function`` is on the traceback of ``exc``."""
    return any(
        frame.name == function for frame in traceback.extract_tb(exc.__traceback__)
    )


def suppressed(exc: BaseException, known: Mapping[str, KnownFinding]) -> bool:
    """Return True when ``exc`` is a known finding the run chose to let pass.

    Only names listed in the ``FUZZ_SUPPRESS`` environment variable count;
    without it (the default, and always in the tests) every finding surfaces.
    """
    names = {n for n in os.environ.get(SUPPRESS_ENV, "").split(",") if n}
    unknown = names - set(known)
    if unknown:
        raise ValueError(f"{SUPPRESS_ENV}: no such known finding {sorted(unknown)}")
    return any(known[name](exc) for name in names)


class StrictFormatHandler(logging.Handler):
    """Format every record and let a formatting error escape to the caller.

    The standard handlers catch a log call whose arguments do not match its
    format string, print "Logging error" and carry on; under fuzzing that bug
    should surface as a crash at the call site instead, so ``emit`` formats
    the record without a ``try`` (``Handler.handle`` does not catch either).
    """

    def emit(self, record: logging.LogRecord) -> None:
        """Build the message and drop it."""
        record.getMessage()


@contextmanager
def strict_logging() -> Iterator[None]:
    """Route every project log call through ``StrictFormatHandler``.

    The root logger goes to DEBUG so guarded debug lines are formatted too;
    the previous level and handlers come back on exit.
    """
    root = logging.getLogger()
    handler = StrictFormatHandler()
    saved_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield
    finally:
        root.removeHandler(handler)
        root.setLevel(saved_level)


class BoundedReadStream(io.BytesIO):
    """A BytesIO that refuses read requests above ``max_read_bytes``.

    ``BufferedReader.read(n)`` on a real file allocates ``n`` bytes before it
    reads, so a decoder that trusts a length field can be made to allocate
    gigabytes by a 100-byte file even though a BytesIO would return little.
    The bound turns such a request into a ``ContractViolation``.
    """

    def __init__(self, data: bytes, max_read_bytes: int) -> None:
        super().__init__(data)
        self.max_read_bytes = max_read_bytes
        self.largest_read_bytes = 0

    def read(self, size: int | None = -1, /) -> bytes:
        """Read like BytesIO after checking the request size."""
        if size is None or size < 0:
            raise ContractViolation("decoder asked to read the whole stream")
        if size > self.max_read_bytes:
            raise ContractViolation(
                f"decoder asked to read {size} bytes at byte {self.tell()}, "
                f"above the {self.max_read_bytes}-byte bound"
            )
        self.largest_read_bytes = max(self.largest_read_bytes, size)
        return super().read(size)
