"""Pieces every harness shares: the violation error, strict logging, reads.

A harness turns a broken contract into ``ContractViolation`` (an
``AssertionError`` raised explicitly, so ``python -O`` keeps the checks);
libFuzzer records any exception that escapes ``one_input`` as a crash.
"""

from __future__ import annotations

import atexit
import io
import logging
import os
import shutil
import tempfile
import traceback
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from fuzz import SUPPRESS_ENV

__all__ = [
    "BoundedReadStream",
    "ContractViolation",
    "KnownFinding",
    "StrictFormatHandler",
    "raised_in",
    "remove_scratch_dirs",
    "scratch_dir",
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


_scratch_dirs: dict[str, Path] = {}


def _scratch_parent() -> Path:
    shm = Path("/dev/shm")
    return shm if shm.is_dir() else Path(tempfile.gettempdir())


def scratch_dir(target: str) -> Path:
    """Return this process's scratch folder for ``target``, made once.

    It sits in ``/dev/shm`` where that exists (inputs are written to a file
    for every execution) and is named ``fuzz-TARGET-PID-*``: libFuzzer ends
    the process without running ``atexit`` after a finding, so ``fuzz.run``
    removes the folder of the process it ran (``remove_scratch_dirs``).
    """
    if target not in _scratch_dirs:
        prefix = f"fuzz-{target}-{os.getpid()}-"
        path = Path(tempfile.mkdtemp(prefix=prefix, dir=_scratch_parent()))
        atexit.register(shutil.rmtree, path, True)
        _scratch_dirs[target] = path
    return _scratch_dirs[target]


def remove_scratch_dirs(target: str, pid: int) -> None:
    """Remove the scratch folders that process ``pid`` made for ``target``."""
    for path in _scratch_parent().glob(f"fuzz-{target}-{pid}-*"):
        shutil.rmtree(path, ignore_errors=True)
