"""Emulated suit: a bumble GATT server that advertises and serves its logs.

The suit advertises (legacy, 31 bytes) the flags, the transfer service's
128-bit UUID and its serial as local name -- complete when it fits in 8
bytes, shortened otherwise; the full serial is in the Device Information
Service.  It keeps every log until a RELEASE_LOG with the log's SHA-256.

Security (see :mod:`.security`): the suit pairs (LE Secure Connections,
bonding, passkey entry unless ``pairing_mitm=False``) only in pairing mode,
which :meth:`EmulatedSuit.enter_pairing_mode` opens as the rider's button
would.  With ``require_bond=True`` it serves logs and releases only to a
bonded gateway, and a release needs a valid receipt.  The default,
``require_bond=False``, keeps protocol version 1 behaviour for callers that
do not pair yet.

Example::

    air = VirtualAir()
    suit = EmulatedSuit("SN000123", {log_id: data}, require_bond=True)
    await suit.async_start(air)
    suit.enter_pairing_mode()
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
from bumble.hci import Address
from bumble.keys import PairingKeys

from firmware_bridge.ble.keystore import BondKeyStore
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
from firmware_bridge.ble.suit.security import PAIRING_WINDOW_S, SuitGuard
from firmware_bridge.ble.suit.store import ReleaseEvidence, SuitLogStore

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
        require_bond: bool = False,
        pairing_mitm: bool = True,
        bond_path: Path | None = None,
    ) -> None:
        """Prepare a suit; nothing is on the air until :meth:`async_start`.

        Args:
            serial: the suit's serial (advertised, and in the DIS).
            logs: ``{log_id: bytes}``, or log files / directories of them.
            battery_pct: battery level in the status (None = unknown).
            charging: charging flag in the status.
            max_mtu: largest ATT MTU the suit accepts.
            max_window_chunks: largest stream window the suit grants.
            require_bond: serve LIST_LOGS, READ_LOG and RELEASE_LOG only to a
                bonded gateway on an encrypted link, and release only with a
                valid receipt.
            pairing_mitm: pair by passkey entry (the suit shows the passkey,
                :attr:`pairing_passkey`); False pairs by Just Works.
            bond_path: JSON file keeping the suit's bonds across restarts
                (mode 0600); None keeps them in memory.

        Raises:
            ValueError: empty serial; BondFileError (a ValueError) for an
                unreadable ``bond_path``.
        """
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
        self._bonds = BondKeyStore(bond_path)
        self.guard = SuitGuard(
            serial,
            self._bonds,
            require_bond=require_bond,
            mitm=pairing_mitm,
            on_change=self._notify_status,
        )

    # Life cycle ---------------------------------------------------------------

    async def async_start(self, air: VirtualAir) -> None:
        """Power the suit on ``air`` and start advertising."""
        if isinstance(self._logs, Mapping):
            self._store = SuitLogStore.from_mapping(self._logs)
        else:
            paths = [self._logs] if isinstance(self._logs, Path) else self._logs
            self._store = SuitLogStore.from_paths(self.serial, paths)
        # A suit's identity address is fixed; the bond file remembers the one it
        # bonded under, so a restarted suit is the same peer to its gateway.
        remembered = self._bonds.local_address
        address = (
            Address(remembered, Address.RANDOM_DEVICE_ADDRESS)
            if remembered is not None
            else air.allocate_address()
        )
        device = air.create_device(f"Suit {self.serial}", address)
        self._bonds.local_address = str(address)
        device.keystore = self._bonds
        device.pairing_config_factory = self.guard.pairing_config
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
        self.guard.end_pairing_mode(notify=False)
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
        # A bonded suit declares the need for encryption in the GATT database,
        # so a stack like BlueZ raises the link's security level by itself.
        control_permissions = Characteristic.Permissions.WRITEABLE
        if self.guard.require_bond:
            control_permissions |= Characteristic.Permissions.WRITE_REQUIRES_ENCRYPTION
        control_char: Characteristic[bytes] = Characteristic(
            CONTROL_POINT_UUID,
            Characteristic.Properties.WRITE | Characteristic.Properties.INDICATE,
            control_permissions,
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
            guard=self.guard,
        )

    def _on_connection(self, connection: Connection) -> None:
        assert self._context is not None
        self.stats.connections += 1
        link = SuitConnection(self._context, connection)
        self._links[connection.handle] = link
        _LOGGER.info("suit %s: connected to %s", self.serial, connection.peer_address)

        def on_encryption_change() -> None:
            if connection.is_encrypted:
                self.stats.encrypted_links += 1

        def on_pairing(keys: PairingKeys) -> None:
            kept = self.guard.on_paired(connection, keys)
            link.on_pairing_end(kept)
            if not kept:
                self._spawn(connection.disconnect())

        connection.on(
            connection.EVENT_CONNECTION_ENCRYPTION_CHANGE, on_encryption_change
        )

        def on_pairing_start() -> None:
            self.guard.on_pairing_start()
            link.on_pairing_start()

        connection.on(connection.EVENT_PAIRING_START, on_pairing_start)
        connection.on(connection.EVENT_PAIRING, on_pairing)
        connection.on(
            connection.EVENT_PAIRING_FAILURE, lambda _reason: link.on_pairing_end(False)
        )

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
            pairing_mode=self.guard.pairing_mode,
            bond_required=self.guard.require_bond,
        )

    # Pairing ------------------------------------------------------------------

    def enter_pairing_mode(self, duration_s: float = PAIRING_WINDOW_S) -> None:
        """Open pairing mode, as holding the suit's button does (in the loop)."""
        self.guard.enter_pairing_mode(duration_s)

    def end_pairing_mode(self) -> None:
        """Close pairing mode now."""
        self.guard.end_pairing_mode()

    @property
    def pairing_mode(self) -> bool:
        """Return True while the suit accepts a new pairing."""
        return self.guard.pairing_mode

    @property
    def pairing_passkey(self) -> int | None:
        """Return the passkey the suit displays for the pairing in progress."""
        return self.guard.passkey

    async def async_read_passkey(self, timeout_s: float = 10.0) -> int | None:
        """Wait for the passkey to show up (an operator reading the display)."""
        return await self.guard.async_read_passkey(timeout_s)

    def forget_bonds(self) -> None:
        """Delete every bond, as a suit's pairing reset does."""
        for bond in self._bonds.peers():
            self._bonds.remove(bond.address)

    @property
    def bonded_gateways(self) -> list[str]:
        """Return the addresses of the gateways enrolled on this suit."""
        return [b.address for b in self._bonds.peers() if b.release_key is not None]

    @property
    def release_receipts(self) -> dict[str, ReleaseEvidence]:
        """Return log id -> gateway and upload digest of receipted releases."""
        return self._store.release_receipts

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
