"""An emulated gateway Bluetooth adapter, and the bleak backend types bound to it.

A :class:`GatewayRadio` is one bumble device (host + controller) on a
:class:`~firmware_bridge.ble.suit.VirtualAir`, or on any bumble HCI transport
such as ``tcp-client:127.0.0.1:PORT``.  Its :attr:`~GatewayRadio.client_backend`
and :attr:`~GatewayRadio.scanner_backend` are classes to pass as ``backend=``
to :class:`bleak.BleakClient` and :class:`bleak.BleakScanner`; everything else
in the gateway's code stays what it is on BlueZ.

Like a real adapter it scans for several scanners at once and opens one LE
connection at a time.  Like BlueZ it keeps its bonds (in memory, or in the
JSON file ``keystore_path``, together with the radio's own identity address
so a restarted gateway is the same peer to its suits), encrypts a link to a
bonded peer right after connecting, and lets a pairing agent
(:attr:`GatewayRadio.passkey_provider`) answer passkey prompts.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from bumble.device import Advertisement, Device
from bumble.hci import Address
from bumble.pairing import PairingDelegate
from bumble.transport import open_transport
from bumble.transport.common import Transport

from firmware_bridge.ble.bleak_bumble.client import BumbleBleakClient
from firmware_bridge.ble.bleak_bumble.pairing import (
    PasskeyProvider,
    gateway_pairing_config,
)
from firmware_bridge.ble.bleak_bumble.scanner import BumbleBleakScanner
from firmware_bridge.ble.keystore import BondKeyStore

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
        keystore: BondKeyStore | None = None,
    ) -> None:
        self.device = device
        self.att_mtu = att_mtu
        """ATT MTU requested after each connect; None leaves the exchange to the
        peer (the link runs at 23 until the suit starts one)."""
        self.keystore = keystore or BondKeyStore()
        """The radio's bonds (what BlueZ keeps in /var/lib/bluetooth)."""
        self.passkey_provider: PasskeyProvider | None = None
        """The pairing agent's operator: returns the passkey a suit displays."""
        self.io_capability = PairingDelegate.IoCapability.KEYBOARD_INPUT_ONLY
        """What the agent announces in SMP: a keyboard, for passkey entry."""
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
        device.keystore = self.keystore
        device.pairing_config_factory = functools.partial(gateway_pairing_config, self)
        device.on(device.EVENT_ADVERTISEMENT, self._on_advertisement)

    @classmethod
    async def async_create(
        cls,
        air: VirtualAir,
        *,
        name: str = "gateway",
        att_mtu: int | None = DEFAULT_GATEWAY_MTU,
        keystore_path: Path | None = None,
    ) -> GatewayRadio:
        """Return a powered radio whose controller is on ``air``.

        Args:
            air: the emulated medium.
            name: the device name.
            att_mtu: ATT MTU to request after each connect (None: none).
            keystore_path: JSON file of the radio's bonds and identity
                address; None keeps bonds in memory.

        Raises:
            BondFileError: ``keystore_path`` exists but cannot be read.
        """
        keystore = BondKeyStore(keystore_path)
        address = _identity(keystore) or air.allocate_address()
        keystore.local_address = str(address)
        device = air.create_device(name, address)
        radio = cls(device, att_mtu=att_mtu, air=air, keystore=keystore)
        async with asyncio.timeout(RADIO_OP_TIMEOUT_S):
            await device.power_on()
        return radio

    @classmethod
    async def async_open_hci(
        cls,
        transport_name: str,
        *,
        name: str = "gateway",
        att_mtu: int | None = DEFAULT_GATEWAY_MTU,
        keystore_path: Path | None = None,
    ) -> GatewayRadio:
        """Return a powered radio driving the controller at ``transport_name``.

        ``keystore_path`` as for :meth:`async_create`.
        """
        keystore = BondKeyStore(keystore_path)
        address = _identity(keystore) or Address.generate_static_address()
        keystore.local_address = str(address)
        async with asyncio.timeout(RADIO_OP_TIMEOUT_S):
            transport = await open_transport(transport_name)
            device = Device.with_hci(name, address, transport.source, transport.sink)
            radio = cls(device, att_mtu=att_mtu, transport=transport, keystore=keystore)
            await device.power_on()
        return radio

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


def _identity(keystore: BondKeyStore) -> Address | None:
    """Return the identity address a keystore file remembers, if any."""
    text = keystore.local_address
    return None if text is None else Address(text, Address.RANDOM_DEVICE_ADDRESS)
