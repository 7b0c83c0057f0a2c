"""Errors raised while encoding or decoding suit transfer protocol messages.

Every parser in :mod:`firmware_bridge.ble.protocol` raises only these types,
whatever bytes it is given::

    ProtocolError                 anything wrong with bytes on the wire
     +-- MalformedMessageError    wrong length, field out of range, bad value
     |    +-- UnknownOpcodeError  opcode not defined by this protocol version
     +-- ChecksumError            data chunk CRC-16 does not match its bytes
     +-- SegmentationError        reply segments lost, reordered or too long

Each error names the message, the field, its byte offset inside the message,
and what was expected versus what was found, so a log line is enough to tell
a firmware bug from radio corruption.
"""

from __future__ import annotations

__all__ = [
    "ChecksumError",
    "MalformedMessageError",
    "ProtocolError",
    "SegmentationError",
    "UnknownOpcodeError",
]


class ProtocolError(Exception):
    """Describe a message that does not follow the suit transfer protocol."""

    def __init__(
        self,
        message: str,
        field: str,
        expected: object,
        found: object,
        offset: int | None = None,
    ) -> None:
        self.message = message
        self.field = field
        self.expected = expected
        self.found = found
        self.offset = offset
        where = f" at byte {offset}" if offset is not None else ""
        super().__init__(
            f"{message}: field {field!r}{where}: expected {expected}, found {found}"
        )


class MalformedMessageError(ProtocolError):
    """Report a message with a wrong length or a field out of its range."""


class UnknownOpcodeError(MalformedMessageError):
    """Report an opcode this protocol version does not define."""


class ChecksumError(ProtocolError):
    """Report a data chunk whose CRC-16 does not match its contents."""


class SegmentationError(ProtocolError):
    """Report reply segments that arrive out of order or overflow the buffer."""
