"""Exceptions raised by the custody buffer.

Hierarchy::

    CustodyError
     ├── UnknownLogError          no log with that id in the index
     ├── LogConflictError         same log id, different size or SHA-256
     ├── InvalidTransitionError   the state machine refuses the change
     ├── OffsetMismatchError      bytes offered at the wrong offset or past the end
     ├── IncompleteLogError       completion asked before every byte is stored
     ├── ChecksumMismatchError    stored bytes do not hash to the announced SHA-256
     ├── QuarantinedLogError      log refused after too many quarantined pulls
     ├── BufferFullError          no room under the disk budget for a new log
     ├── EncryptedDataError       an encrypted file fails to authenticate
     │    └── WrongKeyError        the file was sealed under another key (or none
     │                             is configured): a set-up problem, not bad data
     └── CustodyStorageError      the buffer directory or index cannot be used
          ├── CustodyBusyError     another process holds the buffer
          ├── ReadOnlyBufferError  a change was asked of a read-only buffer
          └── KeyFileError         the key file is missing, too open or malformed

Every message names the log id (or file) and, where it applies, the expected
and the found value, so an operator can act on it from the log line alone.
"""

from __future__ import annotations

__all__ = [
    "BufferFullError",
    "ChecksumMismatchError",
    "CustodyBusyError",
    "CustodyError",
    "CustodyStorageError",
    "EncryptedDataError",
    "IncompleteLogError",
    "InvalidTransitionError",
    "KeyFileError",
    "LogConflictError",
    "OffsetMismatchError",
    "QuarantinedLogError",
    "ReadOnlyBufferError",
    "UnknownLogError",
    "WrongKeyError",
]


class CustodyError(Exception):
    """Base class of every custody buffer error."""


class UnknownLogError(CustodyError, KeyError):
    """No log with this id is registered in the buffer."""

    def __init__(self, log_id: str) -> None:
        super().__init__(f"log {log_id!r}: not registered in the custody buffer")
        self.log_id = log_id

    def __str__(self) -> str:
        return str(self.args[0])


class LogConflictError(CustodyError):
    """A log id is already registered with a different size or digest."""


class InvalidTransitionError(CustodyError):
    """The requested state change is not allowed from the log's current state."""

    def __init__(self, log_id: str, current: str, target: str) -> None:
        super().__init__(
            f"log {log_id!r}: cannot move from state {current!r} to {target!r}"
        )
        self.log_id = log_id
        self.current = current
        self.target = target


class OffsetMismatchError(CustodyError, ValueError):
    """Bytes were offered at an offset other than the durable end of the log."""


class IncompleteLogError(CustodyError):
    """Completion was requested before every announced byte was stored."""


class ChecksumMismatchError(CustodyError):
    """The stored bytes do not hash to the SHA-256 announced for the log."""

    def __init__(self, log_id: str, expected_hex: str, found_hex: str) -> None:
        super().__init__(
            f"log {log_id!r}: SHA-256 mismatch, expected {expected_hex}, "
            f"found {found_hex}; the bytes were quarantined"
        )
        self.log_id = log_id
        self.expected_hex = expected_hex
        self.found_hex = found_hex


class QuarantinedLogError(CustodyError):
    """The log was quarantined too often to be pulled again automatically."""


class CustodyStorageError(CustodyError):
    """The buffer directory or its index is missing, unreadable or too new."""


class CustodyBusyError(CustodyStorageError):
    """Another process (a running agent) holds the buffer for writing."""


class ReadOnlyBufferError(CustodyStorageError):
    """The buffer was opened read-only and cannot change."""


class KeyFileError(CustodyStorageError):
    """The encryption key file cannot be used (missing, too open, malformed)."""


class BufferFullError(CustodyError):
    """A new log does not fit under the disk budget, even after eviction.

    ``reason`` is the text the agent's status shows; ``used_bytes`` and
    ``budget_bytes`` are the figures it was decided on.
    """

    def __init__(self, reason: str, *, used_bytes: int, budget_bytes: int) -> None:
        super().__init__(reason)
        self.reason = reason
        self.used_bytes = used_bytes
        self.budget_bytes = budget_bytes


class EncryptedDataError(CustodyError):
    """An encrypted custody file is damaged, truncated or was tampered with."""


class WrongKeyError(EncryptedDataError):
    """A file was encrypted under another key than the configured one."""
