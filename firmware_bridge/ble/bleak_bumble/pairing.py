"""The emulated gateway's pairing agent: what BlueZ's agent does on a gateway.

On BlueZ, ``BleakClient.pair()`` asks bluetoothd to pair and the OS agent
(bluetoothctl, or one the service registers) answers passkey prompts; the
application never sees SMP.  The emulated radio does the same: its agent
answers bumble's SMP prompts, and a *passkey provider* plays the operator
typing the number the suit displays.  Without a provider the agent refuses a
passkey prompt, as a headless BlueZ agent does.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from bumble.device import Connection
from bumble.pairing import PairingConfig, PairingDelegate

if TYPE_CHECKING:
    from firmware_bridge.ble.bleak_bumble.radio import GatewayRadio

__all__ = ["GatewayPairingDelegate", "PasskeyProvider", "gateway_pairing_config"]

_LOGGER = logging.getLogger(__name__)

PasskeyProvider = Callable[[str], Awaitable[int | None]]
"""Return the passkey to enter for the peer at this address (None = refuse)."""


class GatewayPairingDelegate(PairingDelegate):
    """Answer SMP prompts for one pairing of the emulated gateway."""

    def __init__(self, radio: GatewayRadio, peer_address: str) -> None:
        super().__init__(io_capability=radio.io_capability)
        self._radio = radio
        self._peer = peer_address

    async def get_number(self) -> int | None:
        """Return the passkey from the radio's provider, or None to refuse."""
        provider = self._radio.passkey_provider
        if provider is None:
            _LOGGER.warning("%s: passkey asked, but no one to enter it", self._peer)
            return None
        return await provider(self._peer)

    async def accept(self) -> bool:
        """Refuse pairing started by the peer: the gateway pairs on its own terms."""
        return False


def gateway_pairing_config(
    radio: GatewayRadio, connection: Connection
) -> PairingConfig:
    """Return the SMP configuration the emulated gateway pairs with."""
    return PairingConfig(
        sc=True,
        mitm=True,
        bonding=True,
        delegate=GatewayPairingDelegate(radio, str(connection.peer_address)),
    )
