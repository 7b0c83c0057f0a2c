"""Errors of the processing boundary (suit logs and CSV exports in, CSV out).

Every error names the source (a file path or stream name) and the place in it
(byte offset and field, CSV line and column, or the missing option), and says
what was expected and what was found. The tree tells the caller what to do::

    ProcessingError                  base class: source + place + problem
    ├── BadInputError                the input is at fault: quarantine it
    │   ├── CorruptLogError          a suit log cannot be decoded
    │   │   ├── TruncatedInputError      the file ends inside a header/block
    │   │   ├── NotASuitLogError         wrong magic or block sync word
    │   │   ├── UnsupportedLogVersionError  a format version we cannot read
    │   │   ├── ChecksumError            a header or block fails its CRC-32
    │   │   └── ImpossibleFieldError     a length, count or scale is absurd
    │   ├── CsvInputError            a CSV export cannot be read as asked
    │   │   ├── MissingUnitError         a unit is neither declared nor given
    │   │   ├── MissingColumnError       a required column is absent
    │   │   └── CsvValueError            a value or the layout cannot be parsed
    │   ├── ImplausibleTimeError     time stamps jump further than a ride can
    │   └── NoSamplesError           nothing usable remains after cleaning
    └── ProcessingEnvironmentError   not the input's fault: retry later
        ├── InputReadError               the input file cannot be opened/read
        ├── CrashModelError              the crash model cannot be loaded/run
        └── OutputWriteError             the CSV or JSON cannot be written

Decoder errors (``firmware_bridge.logformat.LogFormatError``) are mapped into
this tree in one place, ``map_log_format_error``, with ``raise ... from``.
"""

from __future__ import annotations

from firmware_bridge.logformat import (
    AbsurdLengthError,
    BadMagicError,
    CrcMismatchError,
    LogFormatError,
    TruncatedLogError,
    UnsupportedVersionError,
)

__all__ = [
    "BadInputError",
    "ChecksumError",
    "CorruptLogError",
    "CrashModelError",
    "CsvInputError",
    "CsvValueError",
    "ImplausibleTimeError",
    "ImpossibleFieldError",
    "InputReadError",
    "MissingColumnError",
    "MissingUnitError",
    "NoSamplesError",
    "NotASuitLogError",
    "OutputWriteError",
    "ProcessingEnvironmentError",
    "ProcessingError",
    "TruncatedInputError",
    "UnsupportedLogVersionError",
    "map_log_format_error",
]


class ProcessingError(Exception):
    """A log or export cannot be processed; names the source and the place."""

    def __init__(self, source: str, place: str, problem: str) -> None:
        self.source = source
        self.place = place
        self.problem = problem
        super().__init__(f"{source}: {place}: {problem}")


class BadInputError(ProcessingError):
    """The input itself is wrong; the caller should quarantine it."""


class CorruptLogError(BadInputError):
    """A suit log cannot be decoded (carries the byte offset and field)."""

    def __init__(self, source: str, offset: int, field: str, problem: str) -> None:
        self.offset = offset
        self.field = field
        super().__init__(source, f"at byte {offset}, field '{field}'", problem)


class TruncatedInputError(CorruptLogError):
    """The log ends inside its header, a block or a CRC."""


class NotASuitLogError(CorruptLogError):
    """The file magic or a block sync word is wrong."""


class UnsupportedLogVersionError(CorruptLogError):
    """The header declares a log format version this software cannot read."""


class ChecksumError(CorruptLogError):
    """A header or block does not match its CRC-32."""


class ImpossibleFieldError(CorruptLogError):
    """A length, count, rate or full-scale field is out of range."""


class CsvInputError(BadInputError):
    """A CSV export cannot be read with the given options."""


class MissingUnitError(CsvInputError):
    """A column's unit is neither in its header nor given as an option."""


class MissingColumnError(CsvInputError):
    """A column the pipeline needs (time, acceleration, angular rate) is absent."""


class CsvValueError(CsvInputError):
    """A value, the delimiter or the header cannot be parsed."""


class ImplausibleTimeError(BadInputError):
    """Time stamps jump or span further than one ride can (a corrupt counter,
    or a CSV time column read in the wrong unit)."""


class NoSamplesError(BadInputError):
    """No valid sample remains after validation and cleaning."""


class ProcessingEnvironmentError(ProcessingError):
    """Processing failed for a reason outside the input; retrying may help."""


class InputReadError(ProcessingEnvironmentError):
    """The input file cannot be opened or read (missing, permissions, I/O)."""


class CrashModelError(ProcessingEnvironmentError):
    """The crash model cannot be loaded, verified or run."""


class OutputWriteError(ProcessingEnvironmentError):
    """The processed CSV cannot be written (disk full, permissions)."""


_DECODER_ERRORS: tuple[tuple[type[LogFormatError], type[CorruptLogError]], ...] = (
    (TruncatedLogError, TruncatedInputError),
    (BadMagicError, NotASuitLogError),
    (UnsupportedVersionError, UnsupportedLogVersionError),
    (CrcMismatchError, ChecksumError),
    (AbsurdLengthError, ImpossibleFieldError),
)


def map_log_format_error(exc: LogFormatError) -> CorruptLogError:
    """Return the processing error for a decoder error (raise it ``from exc``)."""
    for decoder_type, our_type in _DECODER_ERRORS:
        if isinstance(exc, decoder_type):
            return our_type(exc.source, exc.offset, exc.field, exc.problem)
    return CorruptLogError(exc.source, exc.offset, exc.field, exc.problem)
