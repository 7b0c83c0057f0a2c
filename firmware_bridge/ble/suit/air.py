"""One in-process radio medium shared by emulated suits and gateway radios.

A :class:`VirtualAir` wraps one :class:`bumble.link.LocalLink`.  Every bumble
controller attached to it hears the others' advertisements and can open LE
connections to them, with real link-layer, L2CAP, ATT and GATT behaviour.
Nothing leaves the process unless :meth:`VirtualAir.async_expose_hci_tcp` is
used to hand one controller to a bumble host in another process.

The emulated controllers announce a 251-byte LE ACL buffer (Data Length
Extension), as the suit's and the gateway's chips do, so one notification of
up to 247 bytes travels as one link-layer packet.
"""

from __future__ import annotations

import logging
from typing import Any

from bumble.controller import Controller
from bumble.device import Device
from bumble.hci import Address
from bumble.host import Host
from bumble.link import LocalLink
from bumble.transport import open_transport
from bumble.transport.common import AsyncPipeSink, Transport

__all__ = ["HciTcpEndpoint", "VirtualAir"]

_LOGGER = logging.getLogger(__name__)

# LE ACL buffer the emulated controllers announce: 251 bytes is the largest
# link-layer payload with Data Length Extension (27 without it).
LE_ACL_PACKET_BYTES = 251


class HciTcpEndpoint:
    """Keep one controller reachable over HCI on a loopback TCP port."""

    def __init__(self, controller: Controller, transport: Transport, port: int):
        self.controller = controller
        self.port = port
        self._transport = transport

    async def async_close(self) -> None:
        """Stop listening and detach the controller from the air."""
        await self._transport.close()
        link = self.controller.link
        if self.controller in link.controllers:
            link.remove_controller(self.controller)


class VirtualAir:
    """Hold one bumble LocalLink and hand out addresses and controllers."""

    def __init__(self) -> None:
        self.link = LocalLink()  # type: ignore[no-untyped-call]
        self._next_address = 1
        self._taken: set[str] = set()

    def allocate_address(self) -> Address:
        """Return a fresh random static address (two top bits set).

        Addresses handed to :meth:`create_device` explicitly (a gateway that
        remembers its identity, say) are skipped.
        """
        while True:
            number = self._next_address
            self._next_address += 1
            digits = ":".join(f"{(number >> s) & 0xFF:02X}" for s in (24, 16, 8, 0))
            address = Address(f"C0:{digits}:00", Address.RANDOM_DEVICE_ADDRESS)
            if str(address) not in self._taken:
                return address

    def create_controller(
        self, name: str, host_source: Any = None, host_sink: Any = None
    ) -> Controller:
        """Return a controller attached to this air (call inside the event loop)."""
        controller = Controller(
            name, host_source=host_source, host_sink=host_sink, link=self.link
        )
        controller.le_acl_data_packet_length = LE_ACL_PACKET_BYTES
        controller.supported_max_tx_octets = LE_ACL_PACKET_BYTES
        controller.supported_max_rx_octets = LE_ACL_PACKET_BYTES
        controller.suggested_max_tx_octets = LE_ACL_PACKET_BYTES
        return controller

    def create_device(self, name: str, address: Address | None = None) -> Device:
        """Return a powered-off bumble device whose controller is on this air."""
        if address is None:
            address = self.allocate_address()
        elif str(address) in self._taken:
            raise ValueError(f"{name}: address {address} is already on this air")
        self._taken.add(str(address))
        controller = self.create_controller(name)
        host = Host(controller, AsyncPipeSink(controller))
        return Device(name=name, address=address, host=host)

    def detach(self, device: Device) -> None:
        """Take the device's controller off the air (it no longer hears or talks)."""
        self._taken.discard(str(device.static_address))
        for controller in list(self.link.controllers):
            if controller.host is device.host:
                self.link.remove_controller(controller)

    async def async_expose_hci_tcp(
        self, name: str, port: int = 0, host: str = "127.0.0.1"
    ) -> HciTcpEndpoint:
        """Attach a controller reachable over HCI at ``tcp-server:host:port``.

        A bumble host in another process (``tcp-client:127.0.0.1:PORT``) then
        drives that controller and meets the suits on this air.  ``port=0``
        picks a free ephemeral port; the chosen one is ``endpoint.port``.
        """
        if host not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError(f"HCI endpoint must stay on loopback, not {host!r}")
        transport = await open_transport(f"tcp-server:{host}:{port}")
        server = getattr(transport, "server", None)
        sockets = getattr(server, "sockets", None) or []
        bound_port = sockets[0].getsockname()[1] if sockets else port
        controller = self.create_controller(
            name, host_source=transport.source, host_sink=transport.sink
        )
        _LOGGER.info("%s: HCI controller on tcp %s:%d", name, host, bound_port)
        return HciTcpEndpoint(controller, transport, bound_port)
