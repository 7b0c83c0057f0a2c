"""Encode and decode control point replies and events (suit -> gateway).

A reply starts with ``u8 opcode | 0x80, u8 token, u8 result``.  When the
result is not OK the body is empty (:class:`ErrorReply`).  The whole message
travels as one or more indication segments (see :mod:`.segments`).

=============== ====== ======================================================
message         bytes  body after opcode, token and result
=============== ====== ======================================================
LIST_LOGS reply 8+52n  u16 total_logs, u16 start_index, u8 n, n entries of
                       16 log_id, u32 size_bytes, 32 sha256
READ_LOG reply  35     16 log_id, u32 offset, u32 length, u16
                       chunk_payload_bytes, u32 chunk_count, u16 window_chunks
RELEASE reply   3      (none): the log is erased
ABORT reply     3      (none): no chunk of the old stream follows
ENROLL reply    35     32 suit nonce (version 2): the bond is enrolled
STREAM_END      23     opcode 0xC0, token 0, result 0, 16 log_id,
                       u32 chunk_count: every chunk was sent at least once
=============== ====== ======================================================
"""

from __future__ import annotations

import dataclasses
import struct

from firmware_bridge.ble.protocol.constants import (
    MAX_LIST_ENTRIES,
    MAX_WINDOW_CHUNKS,
    NONCE_BYTES,
    REPLY_FLAG,
    STREAM_END_OPCODE,
    Opcode,
    ResultCode,
)
from firmware_bridge.ble.protocol.errors import (
    MalformedMessageError,
    UnknownOpcodeError,
)
from firmware_bridge.ble.protocol.fields import (
    expect_length,
    log_id_from_bytes,
    log_id_to_bytes,
    read_u8,
    read_u16,
    read_u32,
    sha256_to_bytes,
)

__all__ = [
    "AbortReply",
    "EnrollReply",
    "ErrorReply",
    "ListLogsReply",
    "LogEntryRecord",
    "ReadLogReply",
    "ReleaseLogReply",
    "Reply",
    "StreamEnd",
    "decode_reply",
]

_HEAD = struct.Struct("<BBB")
_ENTRY_BYTES = 52
_LIST_HEAD_BYTES = 8


def _head(opcode: int, token: int, result: ResultCode) -> bytes:
    return _HEAD.pack(opcode, token & 0xFF, result)


@dataclasses.dataclass(frozen=True, slots=True)
class LogEntryRecord:
    """Describe one stored log: id, size and SHA-256 of the whole log."""

    log_id: str
    size_bytes: int
    sha256_hex: str

    def encode(self) -> bytes:
        """Return the 52 entry bytes."""
        if not 0 <= self.size_bytes <= 0xFFFFFFFF:
            raise MalformedMessageError(
                "LIST_LOGS reply", "size_bytes", "0..2**32-1", self.size_bytes
            )
        return (
            log_id_to_bytes("LIST_LOGS reply", self.log_id)
            + struct.pack("<I", self.size_bytes)
            + sha256_to_bytes("LIST_LOGS reply", self.sha256_hex)
        )


@dataclasses.dataclass(frozen=True, slots=True)
class ErrorReply:
    """Carry a refused command: its opcode, token and non-OK result."""

    opcode: Opcode
    token: int
    result: ResultCode

    def encode(self) -> bytes:
        """Return the reply bytes."""
        return _head(self.opcode | REPLY_FLAG, self.token, self.result)


@dataclasses.dataclass(frozen=True, slots=True)
class ListLogsReply:
    """Carry one page of the suit's log list."""

    token: int
    total_logs: int
    start_index: int
    entries: tuple[LogEntryRecord, ...]

    def encode(self) -> bytes:
        """Return the reply bytes."""
        if len(self.entries) > MAX_LIST_ENTRIES:
            raise MalformedMessageError(
                "LIST_LOGS reply",
                "entries",
                f"<= {MAX_LIST_ENTRIES}",
                len(self.entries),
                7,
            )
        head = _head(Opcode.LIST_LOGS | REPLY_FLAG, self.token, ResultCode.OK)
        body = struct.pack("<HHB", self.total_logs, self.start_index, len(self.entries))
        return head + body + b"".join(entry.encode() for entry in self.entries)


@dataclasses.dataclass(frozen=True, slots=True)
class ReadLogReply:
    """Accept a READ_LOG and fix the stream's chunk size, count and window."""

    token: int
    log_id: str
    offset: int
    length: int
    chunk_payload_bytes: int
    chunk_count: int
    window_chunks: int

    def encode(self) -> bytes:
        """Return the reply bytes."""
        return (
            _head(Opcode.READ_LOG | REPLY_FLAG, self.token, ResultCode.OK)
            + log_id_to_bytes("READ_LOG reply", self.log_id)
            + struct.pack(
                "<IIHIH",
                self.offset,
                self.length,
                self.chunk_payload_bytes,
                self.chunk_count,
                self.window_chunks,
            )
        )


@dataclasses.dataclass(frozen=True, slots=True)
class ReleaseLogReply:
    """Confirm that the suit erased the released log."""

    token: int

    def encode(self) -> bytes:
        """Return the reply bytes."""
        return _head(Opcode.RELEASE_LOG | REPLY_FLAG, self.token, ResultCode.OK)


@dataclasses.dataclass(frozen=True, slots=True)
class AbortReply:
    """Confirm that the stream stopped; no chunk of it follows."""

    token: int

    def encode(self) -> bytes:
        """Return the reply bytes."""
        return _head(Opcode.ABORT | REPLY_FLAG, self.token, ResultCode.OK)


@dataclasses.dataclass(frozen=True, slots=True)
class EnrollReply:
    """Accept an ENROLL and give the suit's nonce for the release key."""

    token: int
    suit_nonce: bytes

    def encode(self) -> bytes:
        """Return the reply bytes."""
        if len(self.suit_nonce) != NONCE_BYTES:
            raise MalformedMessageError(
                "ENROLL reply",
                "suit_nonce",
                f"{NONCE_BYTES} bytes",
                f"{len(self.suit_nonce)} bytes",
                3,
            )
        head = _head(Opcode.ENROLL | REPLY_FLAG, self.token, ResultCode.OK)
        return head + self.suit_nonce


@dataclasses.dataclass(frozen=True, slots=True)
class StreamEnd:
    """Tell the gateway every chunk of the stream was sent at least once."""

    log_id: str
    chunk_count: int

    def encode(self) -> bytes:
        """Return the event bytes."""
        return (
            _head(STREAM_END_OPCODE, 0, ResultCode.OK)
            + log_id_to_bytes("STREAM_END", self.log_id)
            + struct.pack("<I", self.chunk_count)
        )


Reply = (
    ErrorReply
    | ListLogsReply
    | ReadLogReply
    | ReleaseLogReply
    | AbortReply
    | EnrollReply
    | StreamEnd
)


def _decode_list(data: bytes | bytearray, token: int) -> ListLogsReply:
    name = "LIST_LOGS reply"
    count = read_u8(name, "entry_count", data, 7)
    if count > MAX_LIST_ENTRIES:
        raise MalformedMessageError(
            name, "entry_count", f"<= {MAX_LIST_ENTRIES}", count, 7
        )
    expect_length(name, data, _LIST_HEAD_BYTES + _ENTRY_BYTES * count)
    entries = []
    for index in range(count):
        at = _LIST_HEAD_BYTES + _ENTRY_BYTES * index
        entries.append(
            LogEntryRecord(
                log_id=log_id_from_bytes(name, data, at),
                size_bytes=read_u32(name, "size_bytes", data, at + 16),
                sha256_hex=bytes(data[at + 20 : at + 52]).hex(),
            )
        )
    return ListLogsReply(
        token=token,
        total_logs=read_u16(name, "total_logs", data, 3),
        start_index=read_u16(name, "start_index", data, 5),
        entries=tuple(entries),
    )


def _decode_read(data: bytes | bytearray, token: int) -> ReadLogReply:
    name = "READ_LOG reply"
    expect_length(name, data, 35)
    length = read_u32(name, "length", data, 23)
    payload = read_u16(name, "chunk_payload_bytes", data, 27)
    if payload < 1:
        raise MalformedMessageError(name, "chunk_payload_bytes", ">= 1", payload, 27)
    chunk_count = read_u32(name, "chunk_count", data, 29)
    expected_count = -(-length // payload)
    if chunk_count != expected_count:
        raise MalformedMessageError(
            name,
            "chunk_count",
            f"ceil(length / payload) = {expected_count}",
            chunk_count,
            29,
        )
    window = read_u16(name, "window_chunks", data, 33)
    if not 1 <= window <= MAX_WINDOW_CHUNKS:
        raise MalformedMessageError(
            name, "window_chunks", f"1..{MAX_WINDOW_CHUNKS}", window, 33
        )
    return ReadLogReply(
        token=token,
        log_id=log_id_from_bytes(name, data, 3),
        offset=read_u32(name, "offset", data, 19),
        length=length,
        chunk_payload_bytes=payload,
        chunk_count=chunk_count,
        window_chunks=window,
    )


def _decode_stream_end(data: bytes | bytearray) -> StreamEnd:
    expect_length("STREAM_END", data, 23)
    for field, at in (("token", 1), ("result", 2)):
        if data[at] != 0:
            raise MalformedMessageError("STREAM_END", field, 0, data[at], at)
    return StreamEnd(
        log_id=log_id_from_bytes("STREAM_END", data, 3),
        chunk_count=read_u32("STREAM_END", "chunk_count", data, 19),
    )


def decode_reply(data: bytes | bytearray) -> Reply:
    """Parse one reassembled reply; raise a ProtocolError subclass if bad."""
    opcode_byte = read_u8("reply", "opcode", data, 0)
    token = read_u8("reply", "token", data, 1)
    result_byte = read_u8("reply", "result", data, 2)
    if opcode_byte == STREAM_END_OPCODE:
        return _decode_stream_end(data)
    try:
        if not opcode_byte & REPLY_FLAG:
            raise ValueError(opcode_byte)
        opcode = Opcode(opcode_byte & ~REPLY_FLAG)
    except ValueError:
        raise UnknownOpcodeError(
            "reply", "opcode", "0x81..0x87 or 0xc0", f"0x{opcode_byte:02x}", 0
        ) from None
    if opcode in (Opcode.ACK, Opcode.NACK):
        raise UnknownOpcodeError(
            "reply", "opcode", "a command that has a reply", opcode.name, 0
        )
    try:
        result = ResultCode(result_byte)
    except ValueError:
        raise MalformedMessageError(
            "reply", "result", "a defined result code", f"0x{result_byte:02x}", 2
        ) from None
    if result is not ResultCode.OK:
        expect_length(f"{opcode.name} reply", data, 3)
        return ErrorReply(opcode, token, result)
    if opcode is Opcode.LIST_LOGS:
        return _decode_list(data, token)
    if opcode is Opcode.READ_LOG:
        return _decode_read(data, token)
    if opcode is Opcode.ENROLL:
        expect_length("ENROLL reply", data, 3 + NONCE_BYTES)
        return EnrollReply(token, bytes(data[3:]))
    expect_length(f"{opcode.name} reply", data, 3)
    if opcode is Opcode.RELEASE_LOG:
        return ReleaseLogReply(token)
    return AbortReply(token)
