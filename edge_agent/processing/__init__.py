"""Processing pipeline: suit logs and CSV exports to CSV, analytics, crash verdict.

Entry points: ``process_log`` (a suit log file) and ``process_stream`` (any
source's chunks; the CSV import uses it). See ``pipeline`` for the flow and
``errors`` for what can go wrong.
"""

from .clean import QualityCounters
from .crash import CrashDetector, CrashEvent, CrashVerdict
from .errors import (
    BadInputError,
    ChecksumError,
    CorruptLogError,
    CrashModelError,
    CsvInputError,
    CsvValueError,
    ImplausibleTimeError,
    ImpossibleFieldError,
    InputReadError,
    MissingColumnError,
    MissingUnitError,
    NoSamplesError,
    NotASuitLogError,
    OutputWriteError,
    ProcessingEnvironmentError,
    ProcessingError,
    TruncatedInputError,
    UnsupportedLogVersionError,
)
from .pipeline import ProcessOptions, ProcessResult, process_log, process_stream
from .report import ANALYTICS_SCHEMA, SOFTWARE_VERSION
from .samples import GnssFixes, SampleChunk, SourceChunk, StreamInfo
from .suitlog import SuitLogSource, is_suit_log

__all__ = [
    "ANALYTICS_SCHEMA",
    "SOFTWARE_VERSION",
    "BadInputError",
    "ChecksumError",
    "CorruptLogError",
    "CrashDetector",
    "CrashEvent",
    "CrashModelError",
    "CrashVerdict",
    "CsvInputError",
    "CsvValueError",
    "GnssFixes",
    "ImplausibleTimeError",
    "ImpossibleFieldError",
    "InputReadError",
    "MissingColumnError",
    "MissingUnitError",
    "NoSamplesError",
    "NotASuitLogError",
    "OutputWriteError",
    "ProcessOptions",
    "ProcessResult",
    "ProcessingEnvironmentError",
    "ProcessingError",
    "QualityCounters",
    "SampleChunk",
    "SourceChunk",
    "StreamInfo",
    "SuitLogSource",
    "TruncatedInputError",
    "UnsupportedLogVersionError",
    "is_suit_log",
    "process_log",
    "process_stream",
]
