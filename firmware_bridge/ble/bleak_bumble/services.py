"""Translate bumble GATT discovery results and adverts into bleak's types."""

from __future__ import annotations

import struct
import uuid
from collections.abc import Callable

from bleak.assigned_numbers import CHARACTERISTIC_PROPERTIES, CharacteristicPropertyName
from bleak.backends.characteristic import BleakGATTCharacteristic
from bleak.backends.descriptor import BleakGATTDescriptor
from bleak.backends.service import BleakGATTService, BleakGATTServiceCollection
from bumble.core import UUID
from bumble.gatt_client import ServiceProxy

__all__ = ["ParsedAdvert", "build_service_collection", "parse_advert", "uuid_str"]

# AD types (Core Specification Supplement, Part A, section 1).
_UUID_LIST_TYPES = {0x02: 2, 0x03: 2, 0x04: 4, 0x05: 4, 0x06: 16, 0x07: 16}
_SERVICE_DATA_TYPES = {0x16: 2, 0x20: 4, 0x21: 16}
_SHORT_NAME, _COMPLETE_NAME, _TX_POWER, _MANUFACTURER = 0x08, 0x09, 0x0A, 0xFF
_BASE_UUID_TAIL = "-0000-1000-8000-00805f9b34fb"


def uuid_str(value: UUID) -> str:
    """Return a bumble UUID as bleak's lowercase 128-bit string."""
    raw = value.to_bytes(force_128=True)
    return str(uuid.UUID(bytes=bytes(reversed(raw))))


def _short_uuid_str(raw_le: bytes) -> str:
    if len(raw_le) == 16:
        return str(uuid.UUID(bytes=bytes(reversed(raw_le))))
    number = int.from_bytes(raw_le, "little")
    return f"{number:08x}{_BASE_UUID_TAIL}"


def build_service_collection(
    services: list[ServiceProxy], max_write_without_response: Callable[[], int]
) -> BleakGATTServiceCollection:
    """Return bleak's view of discovered services, characteristics, descriptors."""
    collection = BleakGATTServiceCollection()
    for service in services:
        bleak_service = BleakGATTService(
            service, service.handle, uuid_str(service.uuid)
        )
        collection.add_service(bleak_service)
        for characteristic in service.characteristics:
            properties: list[CharacteristicPropertyName] = [
                name
                for bit, name in CHARACTERISTIC_PROPERTIES.items()
                if characteristic.properties & bit
            ]
            bleak_char = BleakGATTCharacteristic(
                characteristic,
                characteristic.handle,
                uuid_str(characteristic.uuid),
                properties,
                max_write_without_response,
                bleak_service,
            )
            collection.add_characteristic(bleak_char)
            for descriptor in characteristic.descriptors:
                collection.add_descriptor(
                    BleakGATTDescriptor(
                        descriptor,
                        descriptor.handle,
                        uuid_str(descriptor.type),
                        bleak_char,
                    )
                )
    return collection


class ParsedAdvert:
    """Hold the fields bleak's AdvertisementData needs, parsed from AD bytes."""

    def __init__(self) -> None:
        self.local_name: str | None = None
        self.service_uuids: list[str] = []
        self.service_data: dict[str, bytes] = {}
        self.manufacturer_data: dict[int, bytes] = {}
        self.tx_power: int | None = None


def parse_advert(ad_structures: list[tuple[int, bytes]]) -> ParsedAdvert:
    """Parse (AD type, data) pairs; skip structures too short to mean anything."""
    advert = ParsedAdvert()
    for ad_type, data in ad_structures:
        if ad_type in _UUID_LIST_TYPES:
            size = _UUID_LIST_TYPES[ad_type]
            for at in range(0, len(data) - size + 1, size):
                text = _short_uuid_str(data[at : at + size])
                if text not in advert.service_uuids:
                    advert.service_uuids.append(text)
        elif ad_type in _SERVICE_DATA_TYPES:
            size = _SERVICE_DATA_TYPES[ad_type]
            if len(data) >= size:
                advert.service_data[_short_uuid_str(data[:size])] = data[size:]
        elif ad_type in (_SHORT_NAME, _COMPLETE_NAME):
            name = data.decode("utf-8", errors="replace")
            if ad_type == _COMPLETE_NAME or advert.local_name is None:
                advert.local_name = name
        elif ad_type == _TX_POWER and len(data) == 1:
            advert.tx_power = struct.unpack("<b", data)[0]
        elif ad_type == _MANUFACTURER and len(data) >= 2:
            advert.manufacturer_data[int.from_bytes(data[:2], "little")] = data[2:]
    return advert
