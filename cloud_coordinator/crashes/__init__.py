"""Detected crashes: verdicts by R&D and technicians, release of crash data.

See :mod:`.verdicts`.
"""

from .publisher import LazyCommandPublisher
from .verdicts import (
    COMMAND_SCHEMA,
    CommandPublisher,
    CrashLog,
    VerdictOutcome,
    find_crash_log,
    issue_verdict,
    release_crash_data,
    verdict_command,
)

__all__ = [
    "COMMAND_SCHEMA",
    "CommandPublisher",
    "CrashLog",
    "LazyCommandPublisher",
    "VerdictOutcome",
    "find_crash_log",
    "issue_verdict",
    "release_crash_data",
    "verdict_command",
]
