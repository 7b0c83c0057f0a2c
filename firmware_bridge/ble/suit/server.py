"""Emulated suit: a bumble GATT server that advertises and serves its logs.

The suit advertises (legacy, 31 bytes) the flags, the transfer service's
128-bit UUID and its serial as local name -- complete when it fits in 8
bytes, shortened otherwise; the full serial is in the Device Information
Service.  It keeps every log until a RELEASE_LOG with the log's SHA-256.

Example::

    air = VirtualAir()
    suit = EmulatedSuit("SN000123", {log_id: data}, battery_pct=80)
    await suit.async_start(air)
    ...
    await suit.async_stop()
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine, Mapping, Sequence
from pathlib import Path
from typing import Any

from bumble import data_types
from bumble.att import ATT_Error, ErrorCode
from bumble.core import UUID, AdvertisingData
from bumble.device import Connection, Device
from bumble.gatt import Characteristic, CharacteristicValue, Service

from firmware_bridge.ble.protocol import (
    CONTROL_POINT_UUID,
    DATA_UUID,
    DIS_SERIAL_NUMBER_UUID,
    DIS_SERVICE_UUID,
    MAX_WINDOW_CHUNKS,
    PROTOCOL_VERSION,
    SERVICE_UUID,
    STATUS_UUID,
    StatusRecord,
)
from firmware_bridge.ble.suit.air import VirtualAir
from firmware_bridge.ble.suit.connection import SuitConnection, SuitContext
from firmware_bridge.ble.suit.faults import SuitFaults, SuitStats
from firmware_bridge.ble.suit.store import SuitLogStore

__all__ = ["EmulatedSuit", "LogSource"]

_LOGGER = logging.getLogger(__name__)

# ATT MTU the suit accepts by default: 247 fills one 251-byte LE data packet
# (4 bytes of L2CAP header), the common choice of BLE 5 peripherals.
DEFAULT_MAX_MTU = 247

# Advertising interval: 20 ms, the minimum BLE allows, so tests reconnect fast.
ADVERTISING_INTERVAL_MS = 20.0

# Largest window the suit grants.  It is credit, not RAM: a chunk owed again
# is re-read from the log, so the suit accepts the protocol's maximum.
SUIT_MAX_WINDOW_CHUNKS = MAX_WINDOW_CHUNKS

# Local-name bytes left in a 31-byte advertisement after flags (3 bytes), the
# 128-bit service UUID list (18) and the name's own header (2).
ADVERT_NAME_BYTES = 8

# Bound on each bumble call made while stopping or on a test's request.
SUIT_OP_TIMEOUT_S = 10.0

LogSource = Mapping[str, bytes] | Sequence[Path] | Path


def _advertising_data(serial: str) -> bytes:
    raw = serial.encode("utf-8")
    name: data_types.CompleteLocalName | data_types.ShortenedLocalName
    if len(raw) <= ADVERT_NAME_BYTES:
        name = data_types.CompleteLocalName(serial)
    else:
        short = raw[:ADVERT_NAME_BYTES].decode("utf-8", errors="ignore")
        name = data_types.ShortenedLocalName(short)
    return bytes(
        AdvertisingData(
            [
                data_types.Flags(
                    AdvertisingData.Flags.LE_GENERAL_DISCOVERABLE_MODE
                    | AdvertisingData.Flags.BR_EDR_NOT_SUPPORTED
                ),
                data_types.CompleteListOf128BitServiceUUIDs([UUID(SERVICE_UUID)]),
                name,
            ]
        )
    )


class EmulatedSuit:
    """Emulate one suit: status, log list, streaming, release, and faults."""

    def __init__(
        self,
        serial: str,
        logs: LogSource,
        *,
        battery_pct: int | None = 80,
        charging: bool = True,
        max_mtu: int = DEFAULT_MAX_MTU,
        max_window_chunks: int = SUIT_MAX_WINDOW_CHUNKS,
    ) -> None:
        if not serial:
            raise ValueError("suit serial must not be empty")
        self.serial = serial
        self.faults = SuitFaults()
        self.stats = SuitStats()
        self._logs = logs
        self._battery_pct = battery_pct
        self._charging = charging
        self._max_mtu = max_mtu
        self._max_window_chunks = min(max_window_chunks, MAX_WINDOW_CHUNKS)
        self._store = SuitLogStore()
        self._device: Device | None = None
        self._air: VirtualAir | None = None
        self._context: SuitContext | None = None
        self._links: dict[int, SuitConnection] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    # Life cycle ---------------------------------------------------------------

    async def async_start(self, air: VirtualAir) -> None:
        """Power the suit on ``air`` and start advertising."""
        if isinstance(self._logs, Mapping):
            self._store = SuitLogStore.from_mapping(self._logs)
        else:
            paths = [self._logs] if isinstance(self._logs, Path) else self._logs
            self._store = SuitLogStore.from_paths(self.serial, paths)
        device = air.create_device(f"Suit {self.serial}")
        self._air, self._device = air, device
        self._context = self._build_gatt(device)
        device.gatt_server.max_mtu = self._max_mtu
        device.on(device.EVENT_CONNECTION, self._on_connection)
        await device.power_on()
        await device.start_advertising(
            advertising_data=_advertising_data(self.serial),
            scan_response_data=b"",
            auto_restart=True,
            advertising_interval_min=ADVERTISING_INTERVAL_MS,
            advertising_interval_max=ADVERTISING_INTERVAL_MS,
        )
        _LOGGER.info(
            "suit %s: advertising at %s with %d logs",
            self.serial,
            device.random_address,
            len(self._store.entries()),
        )

    async def async_stop(self) -> None:
        """Drop connections, stop advertising and leave the air."""
        device, air = self._device, self._air
        if device is None or air is None:
            return
        links = list(self._links.values())
        async with asyncio.timeout(SUIT_OP_TIMEOUT_S):
            await device.stop_advertising()
            for link in links:
                if link.connection.handle in self._links:
                    await link.connection.disconnect()
            for link in links:
                await link.async_close()
            if self._tasks:
                await asyncio.wait(list(self._tasks))
        self._links.clear()
        air.detach(device)
        self._store.close()
        self._device = self._air = None
        _LOGGER.info("suit %s: stopped", self.serial)

    # GATT database ------------------------------------------------------------

    def _build_gatt(self, device: Device) -> SuitContext:
        status_char: Characteristic[bytes] = Characteristic(
            STATUS_UUID,
            Characteristic.Properties.READ | Characteristic.Properties.NOTIFY,
            Characteristic.Permissions.READABLE,
            CharacteristicValue(read=lambda _connection: self.status_record().encode()),
        )
        control_char: Characteristic[bytes] = Characteristic(
            CONTROL_POINT_UUID,
            Characteristic.Properties.WRITE | Characteristic.Properties.INDICATE,
            Characteristic.Permissions.WRITEABLE,
            CharacteristicValue(write=self._on_control_write),
        )
        data_char: Characteristic[bytes] = Characteristic(
            DATA_UUID,
            Characteristic.Properties.NOTIFY,
            Characteristic.Permissions.READABLE,
            b"",
        )
        serial_char: Characteristic[bytes] = Characteristic(
            DIS_SERIAL_NUMBER_UUID,
            Characteristic.Properties.READ,
            Characteristic.Permissions.READABLE,
            self.serial.encode("utf-8"),
        )
        device.add_service(Service(DIS_SERVICE_UUID, [serial_char]))
        device.add_service(
            Service(SERVICE_UUID, [status_char, control_char, data_char])
        )
        return SuitContext(
            serial=self.serial,
            device=device,
            store=self._store,
            status_char=status_char,
            control_char=control_char,
            data_char=data_char,
            faults=self.faults,
            stats=self.stats,
            max_window_chunks=self._max_window_chunks,
            on_logs_changed=self._notify_status,
        )

    def _on_connection(self, connection: Connection) -> None:
        assert self._context is not None
        self.stats.connections += 1
        self._links[connection.handle] = SuitConnection(self._context, connection)
        _LOGGER.info("suit %s: connected to %s", self.serial, connection.peer_address)

        def on_disconnection(reason: int) -> None:
            link = self._links.pop(connection.handle, None)
            _LOGGER.info("suit %s: disconnected (reason 0x%02x)", self.serial, reason)
            if link is not None:
                self._spawn(link.async_close())

        connection.on(connection.EVENT_DISCONNECTION, on_disconnection)

    def _on_control_write(self, connection: Connection, value: bytes) -> None:
        link = self._links.get(connection.handle)
        if link is None:
            _LOGGER.warning("suit %s: write from unknown connection", self.serial)
            raise ATT_Error(ErrorCode.UNLIKELY_ERROR)
        link.on_control_write(value)

    # Status -------------------------------------------------------------------

    def status_record(self) -> StatusRecord:
        """Return the status the suit reports now."""
        return StatusRecord(
            protocol_version=PROTOCOL_VERSION,
            battery_pct=self._battery_pct,
            charging=self._charging,
            stored_logs=len(self._store.entries()),
        )

    def set_power(self, battery_pct: int | None, charging: bool) -> None:
        """Change battery and charging state and notify subscribers."""
        self._battery_pct, self._charging = battery_pct, charging
        self._notify_status()

    def _notify_status(self) -> None:
        if self._device is not None and self._context is not None:
            value = self.status_record().encode()
            self._spawn(
                self._device.notify_subscribers(self._context.status_char, value)
            )

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # Test and benchmark hooks ---------------------------------------------------

    @property
    def address(self) -> str:
        """Return the suit's Bluetooth address as bleak shows it."""
        if self._device is None:
            raise RuntimeError(f"suit {self.serial} is not started")
        return str(self._device.random_address)

    @property
    def is_connected(self) -> bool:
        """Return True while a gateway is connected."""
        return bool(self._links)

    @property
    def stored_log_ids(self) -> list[str]:
        """Return the ids of the logs the suit still holds."""
        return [log.log_id for log in self._store.entries()]

    @property
    def erased_log_ids(self) -> list[str]:
        """Return the ids of the logs erased after a valid release."""
        return self._store.erased_log_ids

    def set_max_mtu(self, att_mtu: int) -> None:
        """Change the ATT MTU the suit accepts in later MTU exchanges."""
        self._max_mtu = att_mtu
        if self._device is not None:
            self._device.gatt_server.max_mtu = att_mtu

    def _only_connection(self) -> Connection:
        if len(self._links) != 1:
            raise RuntimeError(f"suit {self.serial}: {len(self._links)} connections")
        return next(iter(self._links.values())).connection

    async def async_request_mtu(self, att_mtu: int) -> int:
        """Start an MTU exchange from the suit side; return the MTU agreed."""
        connection = self._only_connection()
        async with asyncio.timeout(SUIT_OP_TIMEOUT_S):
            mtu: int = await connection.gatt_client.request_mtu(att_mtu)
        return mtu

    async def async_disconnect(self) -> None:
        """Drop the current link from the suit side."""
        async with asyncio.timeout(SUIT_OP_TIMEOUT_S):
            await self._only_connection().disconnect()

    async def async_blast(self, count: int, timeout_s: float = 60.0) -> int:
        """Notify ``count`` full-MTU values on the data characteristic, raw.

        No protocol, no window: this measures what the link itself carries,
        as the baseline of the throughput benchmark.  Returns payload bytes.
        """
        assert self._device is not None and self._context is not None
        connection = self._only_connection()
        value = bytes(connection.att_mtu - 3)
        async with asyncio.timeout(timeout_s):
            for index in range(count):
                await self._device.notify_subscriber(
                    connection, self._context.data_char, value
                )
                if index % 8 == 7:
                    await asyncio.sleep(0)
            await connection.drain()
        return count * len(value)
