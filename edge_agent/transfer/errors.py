"""Errors of the gateway side of the suit transfer.

bleak, bleak-retry-connector and protocol errors are mapped into this tree
in one place each (:mod:`.link` and :mod:`.session`), with ``raise ... from``::

    TransferError                  anything that stops a transfer step
     +-- SuitNotFoundError         no suit advertises / connect failed after retries
     +-- SuitLinkError             link lost or a GATT operation failed
     +-- SuitCommandError          the suit answered a command with a non-OK result
     |    +-- ReleaseRefusedError  RELEASE_LOG refused (SHA-256 mismatch, unknown log)
     +-- SuitProtocolError         the suit sent bytes that break the protocol
     +-- TransferStalledError      no progress after repeated re-requests

Errors raised by the LogSink (the custody buffer) pass through unchanged.
"""

from __future__ import annotations

from firmware_bridge.ble.protocol import ResultCode

__all__ = [
    "ReleaseRefusedError",
    "SuitCommandError",
    "SuitLinkError",
    "SuitNotFoundError",
    "SuitProtocolError",
    "TransferError",
    "TransferStalledError",
]


class TransferError(Exception):
    """Base of every error the suit transfer raises."""


class SuitNotFoundError(TransferError):
    """No suit advertises, or connecting failed after every attempt."""


class SuitLinkError(TransferError):
    """The BLE link dropped, or a GATT read/write/subscribe failed."""


class SuitCommandError(TransferError):
    """The suit answered a control point command with a non-OK result."""

    def __init__(self, message: str, result: ResultCode | None) -> None:
        super().__init__(message)
        self.result = result
        """The reply's result code; None when refused at the ATT layer."""


class ReleaseRefusedError(SuitCommandError):
    """The suit refused to release (erase) a log."""


class SuitProtocolError(TransferError):
    """The suit sent a message that breaks the transfer protocol."""


class TransferStalledError(TransferError):
    """A stream made no progress despite repeated re-requests."""
