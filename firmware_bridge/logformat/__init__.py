"""Suit log format v1: records, streaming vectorised decoder, writer."""

from .decoder import Block, DecodedLog, LogReader, read_log
from .encoder import LogWriter
from .errors import (
    AbsurdLengthError,
    BadMagicError,
    CrcMismatchError,
    LogFormatError,
    TruncatedLogError,
    UnsupportedVersionError,
)
from .records import (
    EVENT_DTYPE,
    GNSS_DTYPE,
    RAW_FULL_SCALE_COUNTS,
    BlockType,
    Channel,
    EventKind,
    LogHeader,
    imu_dtype,
    physical_to_raw,
    raw_to_physical,
)

__all__ = [
    "EVENT_DTYPE",
    "GNSS_DTYPE",
    "RAW_FULL_SCALE_COUNTS",
    "AbsurdLengthError",
    "BadMagicError",
    "Block",
    "BlockType",
    "Channel",
    "CrcMismatchError",
    "DecodedLog",
    "EventKind",
    "LogFormatError",
    "LogHeader",
    "LogReader",
    "LogWriter",
    "TruncatedLogError",
    "UnsupportedVersionError",
    "imu_dtype",
    "physical_to_raw",
    "raw_to_physical",
    "read_log",
]
