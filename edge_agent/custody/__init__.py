"""Custody buffer: suit logs on the gateway disk, indexed in SQLite.

See :mod:`edge_agent.custody.buffer` for the design,
:mod:`edge_agent.custody.errors` for the exception tree,
:mod:`edge_agent.custody.budget` for the disk budget and
:mod:`edge_agent.custody.crypto` for encryption at rest and its threat model.
"""

from .budget import OUTPUT_RESERVE_RATIO, SpaceStatus
from .buffer import MAX_PULL_ATTEMPTS, CustodyBuffer
from .crypto import CustodyCipher
from .errors import (
    BufferFullError,
    ChecksumMismatchError,
    CustodyBusyError,
    CustodyError,
    CustodyStorageError,
    EncryptedDataError,
    IncompleteLogError,
    InvalidTransitionError,
    KeyFileError,
    LogConflictError,
    OffsetMismatchError,
    QuarantinedLogError,
    ReadOnlyBufferError,
    UnknownLogError,
    WrongKeyError,
)
from .keyfile import generate_key_file, read_key_file
from .record import LogRecord, PendingWork, QuarantineEntry, RetentionPolicy
from .recovery import RecoveryReport
from .states import ALLOWED_TRANSITIONS, LogState, WorkAction, next_action

__all__ = [
    "ALLOWED_TRANSITIONS",
    "MAX_PULL_ATTEMPTS",
    "OUTPUT_RESERVE_RATIO",
    "BufferFullError",
    "ChecksumMismatchError",
    "CustodyBuffer",
    "CustodyBusyError",
    "CustodyCipher",
    "CustodyError",
    "CustodyStorageError",
    "EncryptedDataError",
    "IncompleteLogError",
    "InvalidTransitionError",
    "KeyFileError",
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
    "SpaceStatus",
    "UnknownLogError",
    "WorkAction",
    "WrongKeyError",
    "generate_key_file",
    "next_action",
    "read_key_file",
]
