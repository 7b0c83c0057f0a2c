"""Encode and decode the status characteristic (read + notify).

Layout, 5 bytes, little-endian::

    0   u8   protocol_version   1
    1   u8   battery_pct        0..100, 0xFF = unknown
    2   u8   flags              bit 0 charging; bits 1..7 reserved, zero
    3   u16  stored_logs        logs the suit still holds (not yet released)

A later protocol version may append fields; a reader of version 1 accepts a
longer value only when protocol_version is above 1 and ignores the tail.
"""

from __future__ import annotations

import dataclasses
import struct

from firmware_bridge.ble.protocol.constants import PROTOCOL_VERSION
from firmware_bridge.ble.protocol.errors import MalformedMessageError
from firmware_bridge.ble.protocol.fields import read_u8, read_u16

__all__ = ["BATTERY_UNKNOWN", "STATUS_BYTES", "StatusRecord"]

STATUS_BYTES = 5
BATTERY_UNKNOWN = 0xFF
_CHARGING_FLAG = 0x01
_STATUS = struct.Struct("<BBBH")
_MESSAGE = "status"


@dataclasses.dataclass(frozen=True, slots=True)
class StatusRecord:
    """Hold the suit's status as carried by the status characteristic."""

    protocol_version: int
    battery_pct: int | None
    charging: bool
    stored_logs: int

    def encode(self) -> bytes:
        """Return the 5-byte characteristic value."""
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
        return _STATUS.pack(self.protocol_version, battery, flags, self.stored_logs)

    @classmethod
    def decode(cls, data: bytes | bytearray) -> StatusRecord:
        """Parse a status value; raise MalformedMessageError naming the field."""
        version = read_u8(_MESSAGE, "protocol_version", data, 0)
        if version < 1:
            raise MalformedMessageError(
                _MESSAGE, "protocol_version", ">= 1", version, 0
            )
        if len(data) < STATUS_BYTES or (
            version == PROTOCOL_VERSION and len(data) != STATUS_BYTES
        ):
            raise MalformedMessageError(
                _MESSAGE, "length", f"{STATUS_BYTES} bytes", f"{len(data)} bytes", 0
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
        return cls(
            protocol_version=version,
            battery_pct=None if battery == BATTERY_UNKNOWN else battery,
            charging=bool(flags & _CHARGING_FLAG),
            stored_logs=read_u16(_MESSAGE, "stored_logs", data, 3),
        )
