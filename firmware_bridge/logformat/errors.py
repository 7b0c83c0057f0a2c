"""Errors raised while reading a suit log.

Every error names the file (or stream), the byte offset and the field, and
says what was expected and what was found, so an operator can locate the
damage with a hex viewer::

    LogFormatError
    ├── TruncatedLogError        the file ends inside a header, block or CRC
    ├── BadMagicError            not a suit log (or not at a block boundary)
    ├── UnsupportedVersionError  a format version this decoder does not know
    ├── CrcMismatchError         a header or block failed its CRC-32
    └── AbsurdLengthError        a length or count field is impossible
"""

from __future__ import annotations

__all__ = [
    "AbsurdLengthError",
    "BadMagicError",
    "CrcMismatchError",
    "LogFormatError",
    "TruncatedLogError",
    "UnsupportedVersionError",
]


class LogFormatError(ValueError):
    """A suit log cannot be decoded at a given place."""

    def __init__(
        self,
        source: str,
        offset: int,
        field: str,
        problem: str,
    ) -> None:
        self.source = source
        self.offset = offset
        self.field = field
        self.problem = problem
        super().__init__(f"{source}: at byte {offset}, field '{field}': {problem}")


class TruncatedLogError(LogFormatError):
    """The log ends before a complete header, block or CRC."""


class BadMagicError(LogFormatError):
    """A magic number or block sync word is wrong."""


class UnsupportedVersionError(LogFormatError):
    """The header declares a format version this decoder cannot read."""


class CrcMismatchError(LogFormatError):
    """A header or block does not match its CRC-32."""


class AbsurdLengthError(LogFormatError):
    """A length or count field is out of the possible range."""
