"""Encode and decode data chunks (notifications on the data characteristic).

Layout, little-endian, one chunk per notification::

    0   u16  seq      chunk index in the stream, modulo 2**16 (first chunk 0)
    2   u32  offset   log byte offset of payload[0]
    6   ...  payload  1 .. ATT_MTU - 11 bytes (all full but the stream's last)
    -2  u16  crc      CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF) over
                      every byte before it: seq, offset and payload

The CRC is computed with :func:`binascii.crc_hqx`, which is C code: the suit
and the gateway both handle several thousand chunks a second.
"""

from __future__ import annotations

import binascii
import struct
from typing import NamedTuple

from firmware_bridge.ble.protocol.constants import CHUNK_OVERHEAD_BYTES, SEQ_MODULUS
from firmware_bridge.ble.protocol.errors import ChecksumError, MalformedMessageError

__all__ = ["DataChunk", "crc16", "decode_chunk", "encode_chunk", "unwrap_seq"]

_HEADER = struct.Struct("<HI")
_CRC = struct.Struct("<H")
_CRC_INIT = 0xFFFF
_HALF_MODULUS = SEQ_MODULUS // 2


def crc16(data: bytes | bytearray | memoryview) -> int:
    """Return the CRC-16/CCITT-FALSE of ``data``."""
    return binascii.crc_hqx(data, _CRC_INIT)


class DataChunk(NamedTuple):
    """Hold one decoded chunk: its 16-bit seq, log offset and payload."""

    seq: int
    offset: int
    payload: bytes


def encode_chunk(seq: int, offset: int, payload: bytes | memoryview) -> bytes:
    """Return the notification bytes of one chunk."""
    if not payload:
        raise MalformedMessageError("data chunk", "payload", ">= 1 byte", 0, 6)
    if not 0 <= offset <= 0xFFFFFFFF:
        raise MalformedMessageError("data chunk", "offset", "0..2**32-1", offset, 2)
    header = _HEADER.pack(seq % SEQ_MODULUS, offset)
    crc = binascii.crc_hqx(payload, binascii.crc_hqx(header, _CRC_INIT))
    return b"".join((header, payload, _CRC.pack(crc)))


def decode_chunk(frame: bytes | bytearray) -> DataChunk:
    """Parse one chunk; raise ChecksumError or MalformedMessageError if bad."""
    if len(frame) <= CHUNK_OVERHEAD_BYTES:
        raise MalformedMessageError(
            "data chunk",
            "length",
            f"> {CHUNK_OVERHEAD_BYTES} bytes",
            f"{len(frame)} bytes",
            0,
        )
    view = memoryview(frame)
    found: int = _CRC.unpack_from(frame, len(frame) - 2)[0]
    computed = binascii.crc_hqx(view[:-2], _CRC_INIT)
    if found != computed:
        raise ChecksumError(
            "data chunk", "crc", f"0x{computed:04x}", f"0x{found:04x}", len(frame) - 2
        )
    seq, offset = _HEADER.unpack_from(frame, 0)
    return DataChunk(seq, offset, view[6:-2].tobytes())


def unwrap_seq(seq: int, reference: int) -> int:
    """Return the chunk index nearest ``reference`` whose low 16 bits are ``seq``.

    Both ends keep full chunk indexes; the wire carries them modulo 2**16.  A
    window far below 2**15 chunks makes the nearest candidate the right one.
    """
    delta = (seq - reference) % SEQ_MODULUS
    if delta >= _HALF_MODULUS:
        delta -= SEQ_MODULUS
    return reference + delta
