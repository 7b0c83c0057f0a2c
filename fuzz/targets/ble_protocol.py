"""Fuzz target ``ble_protocol``: every parser of the suit transfer protocol.

Each input is parsed, as ``bytes`` and as ``bytearray`` (what bleak hands
over), by the control point command parser, the reply parser, the data chunk
parser and the status record parser; it is also cut into indication segments
(one length byte, then that many bytes, repeated) that are fed to one
``ReplyReassembler``, and every reply it completes goes to ``decode_reply`` as
the gateway's link does; then once more with the segment counters set
right (``renumber_segments``), so long replies are reachable.

Contract: only ``ProtocolError`` subclasses escape a parser. Properties: what
a parser accepts, the matching encoder writes back byte for byte (the status
record: the bytes its version defines, not a later version's tail), and a
completed reply survives ``segment_message`` and reassembly at the usual
MTUs. Covers protocol versions 1 and 2 (ENROLL, receipts, security byte).
"""

from __future__ import annotations

import contextlib
import struct
from collections.abc import Callable

from firmware_bridge.ble.protocol import (
    Abort,
    AbortReply,
    Ack,
    Enroll,
    EnrollReply,
    ErrorReply,
    ListLogs,
    ListLogsReply,
    LogEntryRecord,
    Nack,
    Opcode,
    ProtocolError,
    ReadLog,
    ReadLogReply,
    ReleaseLog,
    ReleaseLogReply,
    ReleaseReceipt,
    ReplyReassembler,
    ResultCode,
    StatusRecord,
    StreamEnd,
    crc16,
    decode_chunk,
    decode_command,
    decode_reply,
    encode_chunk,
    segment_message,
)
from firmware_bridge.ble.protocol.constants import (
    CHUNK_OVERHEAD_BYTES,
    MAX_REPLY_BYTES,
)
from firmware_bridge.ble.protocol.segments import FIRST_FLAG, LAST_FLAG
from firmware_bridge.ble.protocol.status import STATUS_BYTES

from ._common import ContractViolation

__all__ = [
    "DICTIONARY",
    "MAX_LEN",
    "one_input",
    "renumber_segments",
    "seeds",
    "split_segments",
]

# Twice the reassembly bound (4,096 bytes) plus segment headers: enough to
# overflow the reassembler and to hold any single message.
MAX_LEN = 10 * 1024
# ATT MTUs a completed reply is re-segmented at: the minimum, a common
# phone/adapter value and the maximum.
_ROUND_TRIP_MTUS = (23, 247, 517)

DICTIONARY: tuple[bytes, ...] = (
    *(bytes([op]) for op in Opcode),
    *(bytes([op | 0x80]) for op in Opcode),
    b"\xc0",
    b"\x80",
    b"\x40",
    struct.pack("<H", 1024),
    struct.pack("<H", 1025),
    bytes([64]),
    bytes([65]),
)

_CRC16 = struct.Struct("<H")
_COUNTER_MASK = 0x3F
_LOG_ID = "0f1e2d3c4b5a69788796a5b4c3d2e1f0"
_SHA = "5e" * 32


def _round_trip(name: str, data: bytes, encode: Callable[[], bytes]) -> None:
    try:
        again = encode()
    except ProtocolError as exc:
        raise ContractViolation(
            f"{name}: parser accepted {data.hex()} but the encoder refuses it: {exc}"
        ) from exc
    if again != data:
        raise ContractViolation(
            f"{name}: parsed {data.hex()} but encodes back as {again.hex()}"
        )


def _parse_all(message: bytes | bytearray) -> None:
    data = bytes(message)
    try:
        command = decode_command(message)
    except ProtocolError:
        pass
    else:
        _round_trip("command", data, command.encode)
    try:
        reply = decode_reply(message)
    except ProtocolError:
        pass
    else:
        _round_trip("reply", data, reply.encode)
    try:
        chunk = decode_chunk(message)
    except ProtocolError:
        pass
    else:
        _round_trip(
            "data chunk",
            data,
            lambda: encode_chunk(chunk.seq, chunk.offset, chunk.payload),
        )
    try:
        status = StatusRecord.decode(message)
    except ProtocolError:
        pass
    else:
        _round_trip("status", data[:STATUS_BYTES], status.encode)


def split_segments(data: bytes) -> list[bytes]:
    """Cut ``data`` into segments: a length byte, then that many bytes."""
    segments = []
    at = 0
    while at < len(data):
        size = data[at]
        segments.append(data[at + 1 : at + 1 + size])
        at += 1 + size
    return segments


def renumber_segments(segments: list[bytes]) -> list[bytes]:
    """Return ``segments`` with each flags byte's counter set as a suit would.

    The FIRST and LAST bits stay; the counter restarts at 0 on a FIRST
    segment and counts up otherwise, so long replies (and the reassembler's
    overflow check) are reachable without guessing every counter byte.
    """
    fixed: list[bytes] = []
    counter = 0
    for segment in segments:
        if not segment:
            fixed.append(segment)
            continue
        flags = segment[0]
        counter = 0 if flags & FIRST_FLAG else counter + 1
        head = (flags & ~_COUNTER_MASK) | (counter & _COUNTER_MASK)
        fixed.append(bytes([head]) + segment[1:])
    return fixed


def _reassemble(segments: list[bytes]) -> None:
    reassembler = ReplyReassembler()
    for segment in segments:
        try:
            message = reassembler.feed(bytearray(segment))
        except ProtocolError:
            continue
        if message is None:
            continue
        if len(message) > MAX_REPLY_BYTES:
            raise ContractViolation(
                f"reassembler returned {len(message)} bytes, above {MAX_REPLY_BYTES}"
            )
        with contextlib.suppress(ProtocolError):
            decode_reply(message)
        for mtu in _ROUND_TRIP_MTUS:
            again = ReplyReassembler()
            parts = [again.feed(part) for part in segment_message(message, mtu)]
            if parts[-1] != message or any(part is not None for part in parts[:-1]):
                raise ContractViolation(
                    f"reply of {len(message)} bytes does not survive "
                    f"segmentation at MTU {mtu}"
                )


def one_input(data: bytes) -> None:
    """Parse ``data`` with every parser; allow only ProtocolError."""
    _parse_all(data)
    _parse_all(bytearray(data))
    if len(data) > CHUNK_OVERHEAD_BYTES:
        # The same frame with its CRC-16 repaired gets past the checksum.
        repaired = data[:-2] + _CRC16.pack(crc16(data[:-2]))
        if repaired != data:
            _parse_all(repaired)
    segments = split_segments(data)
    _reassemble(segments)
    renumbered = renumber_segments(segments)
    if renumbered != segments:
        _reassemble(renumbered)


def _segment_stream(message: bytes, mtu: int) -> bytes:
    return b"".join(bytes([len(s)]) + s for s in segment_message(message, mtu))


def _overflow_stream() -> bytes:
    """Return segments of a maximal reply followed by one more segment."""
    longest = ReadLogReply(8, _LOG_ID, 0, 10_000, 236, 43, 256).encode()
    longest += bytes(MAX_REPLY_BYTES - len(longest))
    segments = segment_message(longest, 247)
    last = segments[-1]
    segments[-1] = bytes([last[0] & ~LAST_FLAG]) + last[1:]
    counter = (len(segments)) & _COUNTER_MASK
    segments.append(bytes([LAST_FLAG | counter]) + b"\xee" * 8)
    return b"".join(bytes([len(s)]) + s for s in segments)


def seeds() -> dict[str, bytes]:
    """Return every message type as the project's encoders write it."""
    entries = tuple(
        LogEntryRecord(f"{index:032x}", 1000 * index + 7, f"{index:02x}" * 32)
        for index in range(1, 4)
    )
    listing = ListLogsReply(9, total_logs=5, start_index=1, entries=entries)
    receipt = ReleaseReceipt.sign(bytes(32), _LOG_ID, _SHA, bytes(range(64, 96)))
    messages: dict[str, bytes] = {
        "cmd-list": ListLogs(1, 0, 64).encode(),
        "cmd-read": ReadLog(2, _LOG_ID, 4096, 0, 236, 256).encode(),
        "cmd-ack": Ack(3, 513).encode(),
        "cmd-nack": Nack(4, 65530, 12).encode(),
        "cmd-release": ReleaseLog(5, _LOG_ID, _SHA).encode(),
        "cmd-abort": Abort(6).encode(),
        "cmd-enroll": Enroll(13, bytes(range(32))).encode(),
        "cmd-release-receipt": ReleaseLog(14, _LOG_ID, _SHA, receipt).encode(),
        "reply-list-0": ListLogsReply(7, 0, 0, ()).encode(),
        "reply-list-3": listing.encode(),
        "reply-read": ReadLogReply(8, _LOG_ID, 0, 10_000, 236, 43, 256).encode(),
        "reply-release": ReleaseLogReply(10).encode(),
        "reply-abort": AbortReply(11).encode(),
        "reply-enroll": EnrollReply(13, bytes(range(32, 64))).encode(),
        "reply-error": ErrorReply(Opcode.READ_LOG, 12, ResultCode.BUSY).encode(),
        "stream-end": StreamEnd(_LOG_ID, 43).encode(),
        "status-v1": StatusRecord(1, 87, True, 3).encode(),
        "status-v2": StatusRecord(2, 55, False, 1, True, True).encode(),
        "status-v3-tail": StatusRecord(3, None, False, 0).encode() + b"\x01\x02",
        "chunk-small": encode_chunk(0, 0, b"SUITLOG\x1a"),
        "chunk-236": encode_chunk(65535, 15_340, bytes(range(236))),
        "segments-list-mtu23": _segment_stream(listing.encode(), 23),
        "segments-overflow": _overflow_stream(),
        "segments-read-mtu23": _segment_stream(
            ReadLogReply(8, _LOG_ID, 0, 10_000, 236, 43, 256).encode(), 23
        ),
    }
    return messages
