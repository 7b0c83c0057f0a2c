"""Encode and decode control point commands (gateway -> suit).

Every command starts with ``u8 opcode, u8 token``; the suit echoes the token
in its reply so the gateway can drop a stale reply.  Commands are written with
response; those longer than ATT_MTU - 3 go out as a GATT long write.

=========== ====== =========================================================
command     bytes  body after opcode and token
=========== ====== =========================================================
LIST_LOGS   5      u16 start_index, u8 max_entries (1..64)
READ_LOG    30     16 log_id, u32 offset, u32 length (0 = to the end),
                   u16 max_payload_bytes (>= 1), u16 window_chunks (1..1024)
ACK         4      u16 next_seq (every chunk before it is received)
NACK        6      u16 first_seq, u16 count (1..1024): send these again
RELEASE_LOG 50     16 log_id, 32 sha256 of the whole log (version 1 form)
RELEASE_LOG 114    the same, then a 64-byte receipt: 32 upload digest,
                   32 HMAC-SHA256 (version 2, see :mod:`.receipts`)
ABORT       2      (none): stop the current stream
ENROLL      34     32 gateway nonce (version 2; in pairing mode only)
=========== ====== =========================================================

RELEASE_LOG is told apart by its length: 50 bytes without a receipt, 114
with one.
"""

from __future__ import annotations

import dataclasses
import struct
from collections.abc import Callable

from firmware_bridge.ble.protocol.constants import (
    MAX_LIST_ENTRIES,
    MAX_WINDOW_CHUNKS,
    NONCE_BYTES,
    Opcode,
)
from firmware_bridge.ble.protocol.errors import (
    MalformedMessageError,
    UnknownOpcodeError,
)
from firmware_bridge.ble.protocol.fields import (
    expect_length,
    log_id_from_bytes,
    log_id_to_bytes,
    normalize_log_id,
    normalize_sha256,
    read_u8,
    read_u16,
    read_u32,
    sha256_to_bytes,
)
from firmware_bridge.ble.protocol.receipts import RECEIPT_BYTES, ReleaseReceipt

__all__ = [
    "Abort",
    "Ack",
    "Command",
    "Enroll",
    "ListLogs",
    "Nack",
    "ReadLog",
    "ReleaseLog",
    "decode_command",
]

_HEAD = struct.Struct("<BB")
_U32_MAX = 0xFFFFFFFF


def _head(message: str, opcode: Opcode, token: int) -> bytes:
    _check_range(message, "token", token, 0, 0xFF, 1)
    return _HEAD.pack(opcode, token)


def _check_range(
    message: str, field: str, value: int, low: int, high: int, offset: int
) -> None:
    if not low <= value <= high:
        raise MalformedMessageError(message, field, f"{low}..{high}", value, offset)


@dataclasses.dataclass(frozen=True, slots=True)
class ListLogs:
    """Ask for up to ``max_entries`` log entries starting at ``start_index``."""

    token: int
    start_index: int = 0
    max_entries: int = MAX_LIST_ENTRIES

    def encode(self) -> bytes:
        """Return the command bytes."""
        _check_range("LIST_LOGS", "start_index", self.start_index, 0, 0xFFFF, 2)
        _check_range(
            "LIST_LOGS", "max_entries", self.max_entries, 1, MAX_LIST_ENTRIES, 4
        )
        return _head("LIST_LOGS", Opcode.LIST_LOGS, self.token) + struct.pack(
            "<HB", self.start_index, self.max_entries
        )

    @classmethod
    def decode(cls, data: bytes | bytearray) -> ListLogs:
        """Parse LIST_LOGS."""
        expect_length("LIST_LOGS", data, 5)
        max_entries = read_u8("LIST_LOGS", "max_entries", data, 4)
        _check_range("LIST_LOGS", "max_entries", max_entries, 1, MAX_LIST_ENTRIES, 4)
        return cls(data[1], read_u16("LIST_LOGS", "start_index", data, 2), max_entries)


@dataclasses.dataclass(frozen=True, slots=True)
class ReadLog:
    """Ask the suit to stream ``log_id`` from ``offset`` as data chunks."""

    token: int
    log_id: str
    offset: int
    length: int
    max_payload_bytes: int
    window_chunks: int

    def encode(self) -> bytes:
        """Return the command bytes."""
        _check_range(
            "READ_LOG", "max_payload_bytes", self.max_payload_bytes, 1, 0xFFFF, 26
        )
        _check_range(
            "READ_LOG", "window_chunks", self.window_chunks, 1, MAX_WINDOW_CHUNKS, 28
        )
        _check_range("READ_LOG", "offset", self.offset, 0, _U32_MAX, 18)
        _check_range("READ_LOG", "length", self.length, 0, _U32_MAX, 22)
        return (
            _head("READ_LOG", Opcode.READ_LOG, self.token)
            + log_id_to_bytes("READ_LOG", self.log_id)
            + struct.pack(
                "<IIHH",
                self.offset,
                self.length,
                self.max_payload_bytes,
                self.window_chunks,
            )
        )

    @classmethod
    def decode(cls, data: bytes | bytearray) -> ReadLog:
        """Parse READ_LOG."""
        expect_length("READ_LOG", data, 30)
        max_payload = read_u16("READ_LOG", "max_payload_bytes", data, 26)
        _check_range("READ_LOG", "max_payload_bytes", max_payload, 1, 0xFFFF, 26)
        window = read_u16("READ_LOG", "window_chunks", data, 28)
        _check_range("READ_LOG", "window_chunks", window, 1, MAX_WINDOW_CHUNKS, 28)
        return cls(
            token=data[1],
            log_id=log_id_from_bytes("READ_LOG", data, 2),
            offset=read_u32("READ_LOG", "offset", data, 18),
            length=read_u32("READ_LOG", "length", data, 22),
            max_payload_bytes=max_payload,
            window_chunks=window,
        )


@dataclasses.dataclass(frozen=True, slots=True)
class Ack:
    """Tell the suit every chunk before ``next_seq`` arrived (grants credit)."""

    token: int
    next_seq: int

    def encode(self) -> bytes:
        """Return the command bytes."""
        return _head("ACK", Opcode.ACK, self.token) + struct.pack(
            "<H", self.next_seq & 0xFFFF
        )

    @classmethod
    def decode(cls, data: bytes | bytearray) -> Ack:
        """Parse ACK."""
        expect_length("ACK", data, 4)
        return cls(data[1], read_u16("ACK", "next_seq", data, 2))


@dataclasses.dataclass(frozen=True, slots=True)
class Nack:
    """Ask the suit to send ``count`` chunks from ``first_seq`` again."""

    token: int
    first_seq: int
    count: int

    def encode(self) -> bytes:
        """Return the command bytes."""
        _check_range("NACK", "count", self.count, 1, MAX_WINDOW_CHUNKS, 4)
        return _head("NACK", Opcode.NACK, self.token) + struct.pack(
            "<HH", self.first_seq & 0xFFFF, self.count
        )

    @classmethod
    def decode(cls, data: bytes | bytearray) -> Nack:
        """Parse NACK."""
        expect_length("NACK", data, 6)
        count = read_u16("NACK", "count", data, 4)
        _check_range("NACK", "count", count, 1, MAX_WINDOW_CHUNKS, 4)
        return cls(data[1], read_u16("NACK", "first_seq", data, 2), count)


_RELEASE_BYTES = 50


@dataclasses.dataclass(frozen=True, slots=True)
class ReleaseLog:
    """Tell the suit it may erase ``log_id`` if its SHA-256 (and receipt) check."""

    token: int
    log_id: str
    sha256_hex: str
    receipt: ReleaseReceipt | None = None

    def encode(self) -> bytes:
        """Return the command bytes (50, or 114 with a receipt)."""
        tail = b"" if self.receipt is None else self.receipt.encode()
        return (
            _head("RELEASE_LOG", Opcode.RELEASE_LOG, self.token)
            + log_id_to_bytes("RELEASE_LOG", self.log_id)
            + sha256_to_bytes("RELEASE_LOG", self.sha256_hex)
            + tail
        )

    @classmethod
    def decode(cls, data: bytes | bytearray) -> ReleaseLog:
        """Parse RELEASE_LOG, with or without a receipt."""
        if len(data) != _RELEASE_BYTES + RECEIPT_BYTES:
            expect_length("RELEASE_LOG", data, _RELEASE_BYTES)
        receipt = None
        if len(data) > _RELEASE_BYTES:
            receipt = ReleaseReceipt.decode(data, _RELEASE_BYTES)
        return cls(
            token=data[1],
            log_id=normalize_log_id(
                "RELEASE_LOG", log_id_from_bytes("RELEASE_LOG", data, 2)
            ),
            sha256_hex=normalize_sha256("RELEASE_LOG", bytes(data[18:50]).hex()),
            receipt=receipt,
        )


@dataclasses.dataclass(frozen=True, slots=True)
class Abort:
    """Stop the current stream; the reply follows its last chunk."""

    token: int

    def encode(self) -> bytes:
        """Return the command bytes."""
        return _head("ABORT", Opcode.ABORT, self.token)

    @classmethod
    def decode(cls, data: bytes | bytearray) -> Abort:
        """Parse ABORT."""
        expect_length("ABORT", data, 2)
        return cls(data[1])


@dataclasses.dataclass(frozen=True, slots=True)
class Enroll:
    """Offer the gateway's nonce for the release key (pairing mode only)."""

    token: int
    gateway_nonce: bytes

    def encode(self) -> bytes:
        """Return the command bytes."""
        if len(self.gateway_nonce) != NONCE_BYTES:
            raise MalformedMessageError(
                "ENROLL",
                "gateway_nonce",
                f"{NONCE_BYTES} bytes",
                f"{len(self.gateway_nonce)} bytes",
                2,
            )
        return _head("ENROLL", Opcode.ENROLL, self.token) + self.gateway_nonce

    @classmethod
    def decode(cls, data: bytes | bytearray) -> Enroll:
        """Parse ENROLL."""
        expect_length("ENROLL", data, 2 + NONCE_BYTES)
        return cls(data[1], bytes(data[2:]))


Command = ListLogs | ReadLog | Ack | Nack | ReleaseLog | Abort | Enroll

_DECODERS: dict[Opcode, Callable[[bytes | bytearray], Command]] = {
    Opcode.LIST_LOGS: ListLogs.decode,
    Opcode.READ_LOG: ReadLog.decode,
    Opcode.ACK: Ack.decode,
    Opcode.NACK: Nack.decode,
    Opcode.RELEASE_LOG: ReleaseLog.decode,
    Opcode.ABORT: Abort.decode,
    Opcode.ENROLL: Enroll.decode,
}


def decode_command(data: bytes | bytearray) -> Command:
    """Parse one control point command; raise a ProtocolError subclass if bad."""
    opcode = read_u8("command", "opcode", data, 0)
    read_u8("command", "token", data, 1)
    try:
        decoder = _DECODERS[Opcode(opcode)]
    except ValueError:
        raise UnknownOpcodeError(
            "command", "opcode", "one of 0x01..0x07", f"0x{opcode:02x}", 0
        ) from None
    command: Command = decoder(data)
    return command
