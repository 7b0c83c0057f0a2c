"""bleak client backend on an emulated bumble radio.

Pass ``radio.client_backend`` as ``backend=`` to :class:`bleak.BleakClient`
(directly or through ``bleak_retry_connector.establish_connection``).

Behaviour follows what the gateway sees from BlueZ: the connect call
encrypts the link when the radio holds a bond with the peer (BlueZ raises a
bonded device's security level on connect), pairs first when ``pair=True``
and no bond exists, exchanges the MTU (unless the radio's ``att_mtu`` is
None) and discovers services; ``pair()`` runs LE Secure Connections pairing
with bonding through bumble's SMP, the radio's agent answering passkey
prompts, and returns at once if the peer is bonded and the link encrypted;
``unpair()`` forgets the bond and disconnects.  ``mtu_size`` is the MTU
negotiated on the link right now; a disconnect, solicited or not, schedules
the disconnected callback.  bumble's ATT errors become
:class:`bleak.exc.BleakGATTProtocolError` (with the ATT code), other bumble
failures and a link lost mid-request :class:`bleak.exc.BleakError` (the
in-flight request is cancelled by bumble, which must not look like a
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
from bleak.exc import BleakError, BleakGATTProtocolError
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

# Bound on one pairing: an operator reads a 6-digit passkey off the suit and
# types it; bleak's docs likewise advise a long timeout when pairing.
PAIRING_TIMEOUT_S = 90.0


class BumbleGATTProtocolError(BleakGATTProtocolError):
    """Carry an ATT error code from bumble, with a message naming the step."""

    def __init__(self, error_code: int, message: str) -> None:
        super().__init__(error_code)
        self._message = message

    def __str__(self) -> str:
        return self._message


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
        if self.radio.keystore.peer(str(connection.peer_address)) is not None:
            await self._async_encrypt(connection)
        elif pair:
            await self._gatt("pairing", connection.pair(), PAIRING_TIMEOUT_S)
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

    async def _async_encrypt(self, connection: Connection) -> None:
        """Encrypt with the stored bond; a peer that lost it leaves the link clear."""
        try:
            await self._gatt("encryption", connection.encrypt())
        except BleakError as error:
            if self._connection is None:
                raise
            _LOGGER.warning(
                "%s: encryption with the stored bond failed (%s); the peer may "
                "have lost the bond",
                self.address,
                error,
            )

    async def pair(self, *args: Any, **kwargs: Any) -> None:
        """Pair and bond (LE Secure Connections) unless already bonded.

        Raises:
            BleakError: the peer refused or the passkey did not match.
        """
        connection = self._require_connection()
        bonded = self.radio.keystore.peer(str(connection.peer_address))
        if bonded is not None and connection.is_encrypted:
            _LOGGER.debug("%s: already paired", self.address)
            return
        await self._gatt("pairing", connection.pair(), PAIRING_TIMEOUT_S)

    async def unpair(self) -> None:
        """Forget the bond with the peer and disconnect."""
        if self._connection is not None:
            address = str(self._connection.peer_address)
        else:
            address = str(self._peer_address)
        self.radio.keystore.remove(address)
        await self.disconnect()

    # GATT -----------------------------------------------------------------

    def _require_connection(self) -> Connection:
        if self._connection is None:
            raise BleakError(f"{self.address}: not connected")
        return self._connection

    async def _gatt(
        self, what: str, operation: Awaitable[_T], timeout_s: float = GATT_OP_TIMEOUT_S
    ) -> _T:
        """Await one GATT operation; map bumble's failures to BleakError."""
        try:
            async with asyncio.timeout(timeout_s):
                return await operation
        except ATT_Error as error:
            raise BumbleGATTProtocolError(
                error.error_code,
                f"{self.address}: {what} refused: ATT error {error.error_name} "
                f"(0x{error.error_code:02x})",
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
