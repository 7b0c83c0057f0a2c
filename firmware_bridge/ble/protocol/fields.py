"""Read and write the fixed-size fields every protocol message is built from.

All multi-byte integers are little-endian, as in ATT itself.  Readers check
the length before touching the bytes, so a short message becomes a
MalformedMessageError naming the field instead of a struct.error.
"""

from __future__ import annotations

import re
import struct

from firmware_bridge.ble.protocol.constants import LOG_ID_BYTES
from firmware_bridge.ble.protocol.errors import MalformedMessageError

__all__ = [
    "expect_length",
    "log_id_from_bytes",
    "log_id_to_bytes",
    "normalize_log_id",
    "normalize_sha256",
    "read_u8",
    "read_u16",
    "read_u32",
    "sha256_to_bytes",
]

_U16 = struct.Struct("<H")
_U32 = struct.Struct("<I")
_HEX32 = re.compile(r"[0-9a-f]{32}")
_HEX64 = re.compile(r"[0-9a-f]{64}")


def expect_length(message: str, data: bytes | bytearray, length: int) -> None:
    """Raise unless ``data`` is exactly ``length`` bytes long."""
    if len(data) != length:
        raise MalformedMessageError(
            message, "length", f"{length} bytes", f"{len(data)} bytes", 0
        )


def _need(message: str, field: str, data: bytes | bytearray, end: int) -> None:
    if len(data) < end:
        raise MalformedMessageError(
            message, field, f"at least {end} bytes", f"{len(data)} bytes", end
        )


def read_u8(message: str, field: str, data: bytes | bytearray, offset: int) -> int:
    """Return the unsigned byte at ``offset``."""
    _need(message, field, data, offset + 1)
    return data[offset]


def read_u16(message: str, field: str, data: bytes | bytearray, offset: int) -> int:
    """Return the little-endian u16 at ``offset``."""
    _need(message, field, data, offset + 2)
    value: int = _U16.unpack_from(data, offset)[0]
    return value


def read_u32(message: str, field: str, data: bytes | bytearray, offset: int) -> int:
    """Return the little-endian u32 at ``offset``."""
    _need(message, field, data, offset + 4)
    value: int = _U32.unpack_from(data, offset)[0]
    return value


def log_id_from_bytes(message: str, data: bytes | bytearray, offset: int) -> str:
    """Return the 16-byte log id at ``offset`` as 32 lowercase hex characters."""
    _need(message, "log_id", data, offset + LOG_ID_BYTES)
    return bytes(data[offset : offset + LOG_ID_BYTES]).hex()


def normalize_log_id(message: str, log_id: str) -> str:
    """Return ``log_id`` as 32 lowercase hex characters (dashes allowed on input)."""
    text = log_id.replace("-", "").lower() if isinstance(log_id, str) else ""
    if not _HEX32.fullmatch(text):
        raise MalformedMessageError(
            message, "log_id", "16-byte UUID as 32 hex characters", repr(log_id)
        )
    return text


def log_id_to_bytes(message: str, log_id: str) -> bytes:
    """Return the 16 wire bytes of ``log_id``."""
    return bytes.fromhex(normalize_log_id(message, log_id))


def normalize_sha256(message: str, sha256_hex: str) -> str:
    """Return ``sha256_hex`` as 64 lowercase hex characters."""
    text = sha256_hex.lower() if isinstance(sha256_hex, str) else ""
    if not _HEX64.fullmatch(text):
        raise MalformedMessageError(
            message, "sha256", "SHA-256 as 64 hex characters", repr(sha256_hex)
        )
    return text


def sha256_to_bytes(message: str, sha256_hex: str) -> bytes:
    """Return the 32 wire bytes of ``sha256_hex``."""
    return bytes.fromhex(normalize_sha256(message, sha256_hex))
