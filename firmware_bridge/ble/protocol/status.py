"""Encode and decode the status characteristic (read + notify).

Layout, little-endian; version 1 is the first 5 bytes, version 2 adds one::

    0   u8   protocol_version   1 or 2
    1   u8   battery_pct        0..100, 0xFF = unknown
    2   u8   flags              bit 0 charging; bits 1..7 reserved, zero
    3   u16  stored_logs        logs the suit still holds (not yet released)
    5   u8   security           (version 2) bit 0 pairing mode open,
                                bit 1 bond required; bits 2..7 reserved, zero

A version-1 value is exactly 5 bytes, a version-2 value at least 6.  A later
version may append fields: a reader accepts a value longer than 6 bytes when
protocol_version is 2 or above and ignores the tail.  The status stays readable
without encryption: a gateway needs it (charging, pairing mode) before it is
bonded, and it names no log.
"""

from __future__ import annotations

import dataclasses
import struct

from firmware_bridge.ble.protocol.errors import MalformedMessageError
from firmware_bridge.ble.protocol.fields import read_u8, read_u16

__all__ = ["BATTERY_UNKNOWN", "STATUS_BYTES", "STATUS_V1_BYTES", "StatusRecord"]

STATUS_V1_BYTES = 5
STATUS_BYTES = 6
BATTERY_UNKNOWN = 0xFF
_CHARGING_FLAG = 0x01
_PAIRING_FLAG = 0x01
_BOND_REQUIRED_FLAG = 0x02
_STATUS = struct.Struct("<BBBH")
_MESSAGE = "status"


@dataclasses.dataclass(frozen=True, slots=True)
class StatusRecord:
    """Hold the suit's status as carried by the status characteristic."""

    protocol_version: int
    battery_pct: int | None
    charging: bool
    stored_logs: int
    pairing_mode: bool = False
    bond_required: bool = False

    def encode(self) -> bytes:
        """Return the characteristic value (5 bytes for version 1, else 6)."""
        battery = BATTERY_UNKNOWN if self.battery_pct is None else self.battery_pct
        if not 0 <= battery <= 100 and battery != BATTERY_UNKNOWN:
            raise MalformedMessageError(
                _MESSAGE, "battery_pct", "0..100 or unknown", battery, 1
            )
        if not 0 <= self.stored_logs <= 0xFFFF:
            raise MalformedMessageError(
                _MESSAGE, "stored_logs", "0..65535", self.stored_logs, 3
            )
        flags = _CHARGING_FLAG if self.charging else 0
        value = _STATUS.pack(self.protocol_version, battery, flags, self.stored_logs)
        security = (_PAIRING_FLAG if self.pairing_mode else 0) | (
            _BOND_REQUIRED_FLAG if self.bond_required else 0
        )
        if self.protocol_version < 2:
            if security:
                raise MalformedMessageError(
                    _MESSAGE, "security", "none in a version-1 status", security, 5
                )
            return value
        return value + bytes([security])

    @classmethod
    def decode(cls, data: bytes | bytearray) -> StatusRecord:
        """Parse a status value; raise MalformedMessageError naming the field."""
        version = read_u8(_MESSAGE, "protocol_version", data, 0)
        if version < 1:
            raise MalformedMessageError(
                _MESSAGE, "protocol_version", ">= 1", version, 0
            )
        length = STATUS_V1_BYTES if version == 1 else STATUS_BYTES
        if len(data) < length or (version == 1 and len(data) != length):
            raise MalformedMessageError(
                _MESSAGE, "length", f"{length} bytes", f"{len(data)} bytes", 0
            )
        battery = read_u8(_MESSAGE, "battery_pct", data, 1)
        if battery > 100 and battery != BATTERY_UNKNOWN:
            raise MalformedMessageError(
                _MESSAGE, "battery_pct", "0..100 or 0xFF", battery, 1
            )
        flags = read_u8(_MESSAGE, "flags", data, 2)
        if flags & ~_CHARGING_FLAG:
            raise MalformedMessageError(
                _MESSAGE, "flags", "only bit 0 set", f"0x{flags:02x}", 2
            )
        security = 0 if version == 1 else read_u8(_MESSAGE, "security", data, 5)
        if security & ~(_PAIRING_FLAG | _BOND_REQUIRED_FLAG):
            raise MalformedMessageError(
                _MESSAGE, "security", "only bits 0..1 set", f"0x{security:02x}", 5
            )
        return cls(
            protocol_version=version,
            battery_pct=None if battery == BATTERY_UNKNOWN else battery,
            charging=bool(flags & _CHARGING_FLAG),
            stored_logs=read_u16(_MESSAGE, "stored_logs", data, 3),
            pairing_mode=bool(security & _PAIRING_FLAG),
            bond_required=bool(security & _BOND_REQUIRED_FLAG),
        )
