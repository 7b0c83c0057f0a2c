"""Pair the gateway with a suit in pairing mode (``edge-agent pair``).

The rider (or technician) holds the suit's pairing button; the suit shows a
passkey and stays pairable for a bounded time.  The operator runs the pair
command, which calls :func:`async_pair_suit`; the OS agent (on the emulated
radio: ``GatewayRadio.passkey_provider``) asks for the passkey.  Afterwards
the suit serves this gateway, and only bonded gateways, its logs.
"""

from __future__ import annotations

import logging

from bleak.backends.client import BaseBleakClient
from bleak.backends.device import BLEDevice

from edge_agent.transfer.bonds import BondStore
from edge_agent.transfer.session import CONNECT_ATTEMPTS, SuitSession

__all__ = ["async_pair_suit"]

_LOGGER = logging.getLogger(__name__)


async def async_pair_suit(
    device: BLEDevice,
    backend: type[BaseBleakClient] | None,
    bond_store: BondStore,
    *,
    connect_attempts: int = CONNECT_ATTEMPTS,
) -> str:
    """Pair and bond with the suit ``device``; return its serial.

    Args:
        device: the suit, as found by ``async_find_suits``.
        backend: bleak client backend; None picks the platform's (BlueZ).
        bond_store: where the bond (address, release key) is stored.
        connect_attempts: attempts for the connection.

    Raises:
        NotInPairingModeError: the suit is not in pairing mode.
        PairingError: pairing or enrolment failed (wrong passkey, window
            closed, the suit speaks protocol version 1); nothing was stored.
        SuitNotFoundError, SuitLinkError, SuitProtocolError: as for a session.
    """
    async with SuitSession(
        device,
        backend=backend,
        connect_attempts=connect_attempts,
        bond_store=bond_store,
    ) as session:
        bond = await session.async_bond()
    _LOGGER.info("suit %s: paired with this gateway (%s)", bond.serial, bond.address)
    return bond.serial
