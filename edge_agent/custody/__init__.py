"""Custody buffer: suit logs on the gateway disk, indexed in SQLite.

See :mod:`edge_agent.custody.buffer` for the design and
:mod:`edge_agent.custody.errors` for the exception tree.
"""

from .buffer import MAX_PULL_ATTEMPTS, CustodyBuffer
from .errors import (
    ChecksumMismatchError,
    CustodyBusyError,
    CustodyError,
    CustodyStorageError,
    IncompleteLogError,
    InvalidTransitionError,
    LogConflictError,
    OffsetMismatchError,
    QuarantinedLogError,
    ReadOnlyBufferError,
    UnknownLogError,
)
from .record import LogRecord, PendingWork, QuarantineEntry, RetentionPolicy
from .recovery import RecoveryReport
from .states import ALLOWED_TRANSITIONS, LogState, WorkAction, next_action

__all__ = [
    "ALLOWED_TRANSITIONS",
    "MAX_PULL_ATTEMPTS",
    "ChecksumMismatchError",
    "CustodyBuffer",
    "CustodyBusyError",
    "CustodyError",
    "CustodyStorageError",
    "IncompleteLogError",
    "InvalidTransitionError",
    "LogConflictError",
    "LogRecord",
    "LogState",
    "OffsetMismatchError",
    "PendingWork",
    "QuarantineEntry",
    "QuarantinedLogError",
    "ReadOnlyBufferError",
    "RecoveryReport",
    "RetentionPolicy",
    "UnknownLogError",
    "WorkAction",
    "next_action",
]
