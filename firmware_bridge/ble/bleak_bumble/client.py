"""bleak client backend on an emulated bumble radio.

Pass ``radio.client_backend`` as ``backend=`` to :class:`bleak.BleakClient`
(directly or through ``bleak_retry_connector.establish_connection``).

Behaviour follows what the gateway sees from BlueZ: the connect call also
exchanges the MTU (unless the radio's ``att_mtu`` is None) and discovers
services; ``mtu_size`` is the MTU negotiated on the link right now; a
disconnect, solicited or not, schedules the disconnected callback; bumble's
ATT errors and a link lost mid-request become :class:`bleak.exc.BleakError`
(the in-flight request is cancelled by bumble, which must not look like a
cancellation of the caller).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from bleak.args import SizedBuffer
from bleak.backends.characteristic import BleakGATTCharacteristic
from bleak.backends.client import BaseBleakClient, NotifyCallback
from bleak.backends.descriptor import BleakGATTDescriptor
from bleak.backends.device import BLEDevice
from bleak.exc import BleakError
from bumble.att import ATT_Error
from bumble.core import BaseBumbleError
from bumble.device import Connection, Peer
from bumble.hci import Address, HCI_StatusError

from firmware_bridge.ble.bleak_bumble.services import build_service_collection, uuid_str

if TYPE_CHECKING:
    from firmware_bridge.ble.bleak_bumble.radio import GatewayRadio

__all__ = ["BumbleBleakClient"]

_LOGGER = logging.getLogger(__name__)
_T = TypeVar("_T")

# ATT default MTU, reported while no link exists.
_DEFAULT_MTU = 23

# Bound on one GATT request; bumble's own ATT timeout is 30 s.
GATT_OP_TIMEOUT_S = 30.0


class BumbleBleakClient(BaseBleakClient):
    """Implement bleak's client backend interface over a bumble connection."""

    radio: ClassVar[GatewayRadio]

    def __init__(
        self,
        address_or_ble_device: BLEDevice | str,
        *,
        disconnected_callback: Callable[[], None] | None = None,
        timeout: float = 10.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            address_or_ble_device,
            disconnected_callback=disconnected_callback,
            timeout=timeout,
        )
        if not hasattr(type(self), "radio"):
            raise TypeError(
                "use GatewayRadio.client_backend, not BumbleBleakClient itself"
            )
        self._peer_address = Address(self.address, Address.RANDOM_DEVICE_ADDRESS)
        self._device_name: str | None = None
        if isinstance(address_or_ble_device, BLEDevice):
            self._device_name = address_or_ble_device.name
            if isinstance(address_or_ble_device.details, Address):
                self._peer_address = address_or_ble_device.details
        services = kwargs.get("services")
        self._service_filter = sorted(services) if services else None
        self._connection: Connection | None = None
        self._subscribers: dict[int, Callable[[bytes], None]] = {}

    @property
    def name(self) -> str:
        """Return the advertised name, or the address with dashes."""
        return self._device_name or self.address.replace(":", "-")

    @property
    def mtu_size(self) -> int:
        """Return the ATT MTU negotiated on the link now (23 before any exchange)."""
        connection = self._connection
        return connection.att_mtu if connection is not None else _DEFAULT_MTU

    @property
    def is_connected(self) -> bool:
        """Return True while the LE link is up."""
        return self._connection is not None

    # Connection -----------------------------------------------------------

    async def connect(self, pair: bool, **kwargs: Any) -> None:
        """Connect, exchange the MTU, discover services (and pair if asked)."""
        timeout_s = float(kwargs.get("timeout", self._timeout))
        radio = self.radio
        try:
            async with asyncio.timeout(timeout_s), radio.connect_lock:
                connection = await radio.device.connect(
                    self._peer_address, timeout=timeout_s
                )
        except (BaseBumbleError, HCI_StatusError) as error:
            raise BleakError(f"{self.address}: connection failed: {error}") from error
        self._connection = connection
        connection.on(connection.EVENT_DISCONNECTION, self._on_disconnection)
        try:
            async with asyncio.timeout(timeout_s):
                await self._async_setup(connection, pair)
        except BaseException:
            await self.disconnect()
            raise

    async def _async_setup(self, connection: Connection, pair: bool) -> None:
        peer = Peer(connection)
        if self.radio.att_mtu is not None:
            await self._gatt("MTU exchange", peer.request_mtu(self.radio.att_mtu))
        await self._gatt("service discovery", peer.discover_services())
        wanted = self._service_filter
        services = [
            service
            for service in peer.services
            if wanted is None or uuid_str(service.uuid) in wanted
        ]
        for service in services:
            await self._gatt(
                "discovery", peer.discover_characteristics(service=service)
            )
            for characteristic in service.characteristics:
                await self._gatt(
                    "discovery",
                    peer.discover_descriptors(characteristic=characteristic),
                )
        if pair:
            await self._gatt("pairing", connection.pair())
        self.services = build_service_collection(
            services, lambda: max(connection.att_mtu - 3, 20)
        )

    async def disconnect(self) -> None:
        """Disconnect; return at once if the link is already down."""
        connection = self._connection
        if connection is None:
            return
        try:
            async with asyncio.timeout(self._timeout):
                await connection.disconnect()
        except (BaseBumbleError, HCI_StatusError) as error:
            _LOGGER.debug("%s: disconnect: %s", self.address, error)
        self._connection = None

    def _on_disconnection(self, reason: int) -> None:
        _LOGGER.debug("%s: disconnected (reason 0x%02x)", self.address, reason)
        self._connection = None
        self._subscribers.clear()
        if self._disconnected_callback is not None:
            asyncio.get_running_loop().call_soon(self._disconnected_callback)

    async def pair(self, *args: Any, **kwargs: Any) -> None:
        """Pair over the current link (bumble's Just Works by default)."""
        await self._gatt("pairing", self._require_connection().pair())

    async def unpair(self) -> None:
        """Refuse: the emulated radio keeps no bonds."""
        raise BleakError(f"{self.address}: the emulated radio keeps no bonds")

    # GATT -----------------------------------------------------------------

    def _require_connection(self) -> Connection:
        if self._connection is None:
            raise BleakError(f"{self.address}: not connected")
        return self._connection

    async def _gatt(self, what: str, operation: Awaitable[_T]) -> _T:
        """Await one GATT operation; map bumble's failures to BleakError."""
        try:
            async with asyncio.timeout(GATT_OP_TIMEOUT_S):
                return await operation
        except ATT_Error as error:
            raise BleakError(
                f"{self.address}: {what} refused: ATT error {error.error_name} "
                f"(0x{error.error_code:02x})"
            ) from error
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise
            raise BleakError(f"{self.address}: {what} failed: link lost") from None
        except (BaseBumbleError, HCI_StatusError) as error:
            raise BleakError(f"{self.address}: {what} failed: {error}") from error

    async def read_gatt_char(
        self,
        characteristic: BleakGATTCharacteristic,
        *,
        use_cached: bool = False,
        **kwargs: Any,
    ) -> bytearray:
        """Read a characteristic value (long values via Read Blob)."""
        client = self._require_connection().gatt_client
        value = await self._gatt("read", client.read_value(characteristic.handle))
        return bytearray(value)

    async def read_gatt_descriptor(
        self,
        descriptor: BleakGATTDescriptor,
        *,
        use_cached: bool = False,
        **kwargs: Any,
    ) -> bytearray:
        """Read a descriptor value."""
        client = self._require_connection().gatt_client
        value = await self._gatt("read", client.read_value(descriptor.handle))
        return bytearray(value)

    async def write_gatt_char(
        self, characteristic: BleakGATTCharacteristic, data: SizedBuffer, response: bool
    ) -> None:
        """Write a characteristic (long writes use Prepare/Execute Write)."""
        client = self._require_connection().gatt_client
        await self._gatt(
            "write",
            client.write_value(
                characteristic.handle, bytes(data), with_response=response
            ),
        )

    async def write_gatt_descriptor(
        self, descriptor: BleakGATTDescriptor, data: SizedBuffer
    ) -> None:
        """Write a descriptor value with response."""
        client = self._require_connection().gatt_client
        await self._gatt(
            "write",
            client.write_value(descriptor.handle, bytes(data), with_response=True),
        )

    async def start_notify(
        self,
        characteristic: BleakGATTCharacteristic,
        callback: NotifyCallback,
        **kwargs: Any,
    ) -> None:
        """Subscribe; notifications are preferred when both kinds are offered."""
        client = self._require_connection().gatt_client
        address = self.address

        def on_value(value: bytes) -> None:
            try:
                callback(bytearray(value))
            except Exception:
                _LOGGER.exception("%s: notification callback failed", address)

        self._subscribers[characteristic.handle] = on_value
        await self._gatt(
            "subscribe",
            client.subscribe(characteristic.obj, on_value, prefer_notify=True),
        )

    async def stop_notify(self, characteristic: BleakGATTCharacteristic) -> None:
        """Unsubscribe from a characteristic."""
        client = self._require_connection().gatt_client
        subscriber = self._subscribers.pop(characteristic.handle, None)
        await self._gatt(
            "unsubscribe", client.unsubscribe(characteristic.obj, subscriber)
        )
