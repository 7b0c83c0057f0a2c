"""Errors of the gateway side of the suit transfer.

bleak, bleak-retry-connector and protocol errors are mapped into this tree
in one place each (:mod:`.link` and :mod:`.session`), with ``raise ... from``::

    TransferError                  anything that stops a transfer step
     +-- SuitNotFoundError         no suit advertises / connect failed after retries
     +-- SuitLinkError             link lost or a GATT operation failed
     +-- SuitCommandError          the suit answered a command with a non-OK result
     |    +-- ReleaseRefusedError  RELEASE_LOG refused (SHA-256, receipt, unknown log)
     |    +-- SuitNotBondedError   the suit wants a bonded, encrypted link, or this
     |                             gateway holds no release key for it
     +-- PairingError              pairing or enrolment with a suit failed
     |    +-- NotInPairingModeError  the suit is not in pairing mode
     +-- SuitProtocolError         the suit sent bytes that break the protocol
     +-- TransferStalledError      no progress after repeated re-requests
     +-- AdapterBusyError          another process owns the Bluetooth adapter

Errors raised by the LogSink (the custody buffer) pass through unchanged.
"""

from __future__ import annotations

from firmware_bridge.ble.protocol import ResultCode

__all__ = [
    "AdapterBusyError",
    "NotInPairingModeError",
    "PairingError",
    "ReleaseRefusedError",
    "SuitCommandError",
    "SuitLinkError",
    "SuitNotBondedError",
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


class SuitNotBondedError(SuitCommandError):
    """The suit serves this only to a bonded gateway; this one is not (yet)."""


class PairingError(TransferError):
    """Pairing or enrolment with a suit failed; nothing was stored."""


class NotInPairingModeError(PairingError):
    """The suit is not in pairing mode (its button was not held, or it timed out)."""


class AdapterBusyError(TransferError):
    """Another process holds the lock of the Bluetooth adapter."""

    def __init__(self, message: str, adapter: str, holder_pid: int | None) -> None:
        super().__init__(message)
        self.adapter = adapter
        self.holder_pid = holder_pid
        """The pid written by the holder, or None if it could not be read."""


class SuitProtocolError(TransferError):
    """The suit sent a message that breaks the transfer protocol."""


class TransferStalledError(TransferError):
    """A stream made no progress despite repeated re-requests."""
