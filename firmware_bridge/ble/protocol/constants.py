"""Identifiers, codes and sizes of the suit transfer protocol (version 2).

docs/ble-protocol.md describes every message byte by byte; this module holds
the numbers that description refers to.
"""

from __future__ import annotations

import enum

__all__ = [
    "ATT_APP_ERROR_BASE",
    "ATT_MIN_MTU",
    "ATT_NOTIFY_HEADER_BYTES",
    "CHUNK_OVERHEAD_BYTES",
    "CONTROL_POINT_UUID",
    "DATA_UUID",
    "DIS_SERIAL_NUMBER_UUID",
    "DIS_SERVICE_UUID",
    "LOG_ID_BYTES",
    "MAX_LIST_ENTRIES",
    "MAX_LOG_BYTES",
    "MAX_REPLY_BYTES",
    "MAX_WINDOW_CHUNKS",
    "NONCE_BYTES",
    "PROTOCOL_VERSION",
    "RECEIPT_MAC_BYTES",
    "REPLY_FLAG",
    "SEGMENT_HEADER_BYTES",
    "SEQ_MODULUS",
    "SERVICE_UUID",
    "SHA256_BYTES",
    "STATUS_UUID",
    "STREAM_END_OPCODE",
    "Opcode",
    "ResultCode",
    "chunk_payload_for_mtu",
]

# Version 2 adds bonding: ENROLL, a receipt on RELEASE_LOG and a security byte
# in the status.  Every version-1 message keeps its layout and meaning.
PROTOCOL_VERSION = 2

# Custom 128-bit UUIDs: one base, the second 16-bit group numbers the attribute.
SERVICE_UUID = "96450001-2fd1-413c-9b2e-c312f98247a5"
STATUS_UUID = "96450002-2fd1-413c-9b2e-c312f98247a5"
CONTROL_POINT_UUID = "96450003-2fd1-413c-9b2e-c312f98247a5"
DATA_UUID = "96450004-2fd1-413c-9b2e-c312f98247a5"

# Standard Device Information Service: the suit's full serial lives here, because
# the 31-byte legacy advertisement has room for only 8 characters of it.
DIS_SERVICE_UUID = "0000180a-0000-1000-8000-00805f9b34fb"
DIS_SERIAL_NUMBER_UUID = "00002a25-0000-1000-8000-00805f9b34fb"

# ATT: the default MTU every link starts with, and the opcode + handle bytes that
# precede a notified or indicated value.
ATT_MIN_MTU = 23
ATT_NOTIFY_HEADER_BYTES = 3

LOG_ID_BYTES = 16
SHA256_BYTES = 32

# ENROLL: each side contributes a 32-byte random nonce to the release key.
NONCE_BYTES = 32

# Release receipt: HMAC-SHA256, kept whole (a truncated tag would save 16 bytes
# on a command sent once per log).
RECEIPT_MAC_BYTES = 32

# Data chunk: u16 seq + u32 offset before the payload, u16 CRC after it.  Eight
# bytes keep payload/ATT-bytes at 236/247 = 95.5 % for an MTU of 247.
CHUNK_OVERHEAD_BYTES = 8

# Reply segment: one flags/counter byte before each fragment.
SEGMENT_HEADER_BYTES = 1

# Sequence numbers are 16 bits on the wire; a window far below half the modulus
# lets both ends unwrap them without ambiguity.
SEQ_MODULUS = 1 << 16
MAX_WINDOW_CHUNKS = 1024

# Offsets and sizes are u32 on the wire: a log is at most 4 GiB - 1 bytes
# (a professional ride log is about 250 MB).
MAX_LOG_BYTES = (1 << 32) - 1

# One LIST_LOGS reply carries at most this many 52-byte entries, which bounds
# the reassembly buffer (MAX_REPLY_BYTES) on the gateway.
MAX_LIST_ENTRIES = 64
MAX_REPLY_BYTES = 4096

# ACK and NACK have no reply message; the suit rejects them with an ATT
# application error whose code is this base plus the ResultCode.
ATT_APP_ERROR_BASE = 0x80


class Opcode(enum.IntEnum):
    """Name the first byte of a control point command."""

    LIST_LOGS = 0x01
    READ_LOG = 0x02
    ACK = 0x03
    NACK = 0x04
    RELEASE_LOG = 0x05
    ABORT = 0x06
    ENROLL = 0x07


# A reply's opcode is the command's opcode with this bit set; STREAM_END is an
# unsolicited event the suit sends after the last chunk of a stream.
REPLY_FLAG = 0x80
STREAM_END_OPCODE = 0xC0


class ResultCode(enum.IntEnum):
    """Name the outcome carried in every reply."""

    OK = 0x00
    UNKNOWN_LOG = 0x01
    BAD_RANGE = 0x02
    SHA_MISMATCH = 0x03
    BUSY = 0x04
    MALFORMED = 0x05
    UNKNOWN_OPCODE = 0x06
    NO_STREAM = 0x07
    BAD_RECEIPT = 0x08
    NOT_PAIRING = 0x09


def chunk_payload_for_mtu(att_mtu: int) -> int:
    """Return the data payload bytes one notification carries at ``att_mtu``."""
    return max(att_mtu, ATT_MIN_MTU) - ATT_NOTIFY_HEADER_BYTES - CHUNK_OVERHEAD_BYTES
