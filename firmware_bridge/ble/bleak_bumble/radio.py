"""An emulated gateway Bluetooth adapter, and the bleak backend types bound to it.

A :class:`GatewayRadio` is one bumble device (host + controller) on a
:class:`~firmware_bridge.ble.suit.VirtualAir`, or on any bumble HCI transport
such as ``tcp-client:127.0.0.1:PORT``.  Its :attr:`~GatewayRadio.client_backend`
and :attr:`~GatewayRadio.scanner_backend` are classes to pass as ``backend=``
to :class:`bleak.BleakClient` and :class:`bleak.BleakScanner`; everything else
in the gateway's code stays what it is on BlueZ.

Like a real adapter it scans for several scanners at once and opens one LE
connection at a time.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from bumble.device import Advertisement, Device
from bumble.hci import Address
from bumble.transport import open_transport
from bumble.transport.common import Transport

from firmware_bridge.ble.bleak_bumble.client import BumbleBleakClient
from firmware_bridge.ble.bleak_bumble.scanner import BumbleBleakScanner

if TYPE_CHECKING:
    from firmware_bridge.ble.suit.air import VirtualAir

__all__ = ["DEFAULT_GATEWAY_MTU", "GatewayRadio"]

_LOGGER = logging.getLogger(__name__)

# ATT MTU the emulated gateway asks for right after connecting, as BlueZ does
# (BlueZ offers 517; the suit caps it at its own maximum).
DEFAULT_GATEWAY_MTU = 517

# Bound on powering the radio on or off.
RADIO_OP_TIMEOUT_S = 10.0


class GatewayRadio:
    """Own one emulated adapter and hand out bleak backends bound to it."""

    def __init__(
        self,
        device: Device,
        *,
        att_mtu: int | None = DEFAULT_GATEWAY_MTU,
        transport: Transport | None = None,
        air: VirtualAir | None = None,
    ) -> None:
        self.device = device
        self.att_mtu = att_mtu
        """ATT MTU requested after each connect; None leaves the exchange to the
        peer (the link runs at 23 until the suit starts one)."""
        self.connect_lock = asyncio.Lock()
        self._transport = transport
        self._air = air
        self._scanners: set[BumbleBleakScanner] = set()
        self._scan_lock = asyncio.Lock()
        self.client_backend: type[BumbleBleakClient] = type(
            "BoundBumbleBleakClient", (BumbleBleakClient,), {"radio": self}
        )
        self.scanner_backend: type[BumbleBleakScanner] = type(
            "BoundBumbleBleakScanner", (BumbleBleakScanner,), {"radio": self}
        )
        device.on(device.EVENT_ADVERTISEMENT, self._on_advertisement)

    @classmethod
    async def async_create(
        cls,
        air: VirtualAir,
        *,
        name: str = "gateway",
        att_mtu: int | None = DEFAULT_GATEWAY_MTU,
    ) -> GatewayRadio:
        """Return a powered radio whose controller is on ``air``."""
        device = air.create_device(name)
        async with asyncio.timeout(RADIO_OP_TIMEOUT_S):
            await device.power_on()
        return cls(device, att_mtu=att_mtu, air=air)

    @classmethod
    async def async_open_hci(
        cls,
        transport_name: str,
        *,
        name: str = "gateway",
        att_mtu: int | None = DEFAULT_GATEWAY_MTU,
    ) -> GatewayRadio:
        """Return a powered radio driving the controller at ``transport_name``."""
        async with asyncio.timeout(RADIO_OP_TIMEOUT_S):
            transport = await open_transport(transport_name)
            device = Device.with_hci(
                name,
                Address.generate_static_address(),
                transport.source,
                transport.sink,
            )
            await device.power_on()
        return cls(device, att_mtu=att_mtu, transport=transport)

    async def async_close(self) -> None:
        """Disconnect everything and release the controller or transport."""
        async with asyncio.timeout(RADIO_OP_TIMEOUT_S):
            for connection in list(self.device.connections.values()):
                await connection.disconnect()
            if self.device.is_scanning:
                await self.device.stop_scanning()
            await self.device.power_off()
            if self._transport is not None:
                await self._transport.close()
        if self._air is not None:
            self._air.detach(self.device)

    # Scanning is shared: the controller scans while any scanner is started.

    async def async_add_scanner(self, scanner: BumbleBleakScanner) -> None:
        """Start delivering adverts to ``scanner``."""
        async with self._scan_lock:
            self._scanners.add(scanner)
            if not self.device.is_scanning:
                await self.device.start_scanning(active=True, filter_duplicates=False)

    async def async_remove_scanner(self, scanner: BumbleBleakScanner) -> None:
        """Stop delivering adverts to ``scanner``; stop scanning if it was last."""
        async with self._scan_lock:
            self._scanners.discard(scanner)
            if not self._scanners and self.device.is_scanning:
                await self.device.stop_scanning()

    def _on_advertisement(self, advertisement: Advertisement) -> None:
        for scanner in list(self._scanners):
            scanner.on_advertisement(advertisement)
