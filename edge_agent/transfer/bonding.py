"""Bond with a suit and sign releases, over one connected :class:`SuitLink`.

Pairing goes through bleak's public ``BleakClient.pair()``: on BlueZ the OS
pairs and its agent answers passkey prompts; on the emulated radio bumble's
SMP does, with the radio's agent.  The application then enrols: ENROLL with
a fresh gateway nonce on the now encrypted link, the suit's nonce back, and
both sides derive the release key (docs/ble-protocol.md, section 10).
"""

from __future__ import annotations

import asyncio
import logging
import secrets

from bleak.exc import BleakError

from edge_agent.transfer.bonds import BondStore, SuitBond
from edge_agent.transfer.errors import (
    NotInPairingModeError,
    PairingError,
    ReleaseRefusedError,
    SuitLinkError,
    SuitNotBondedError,
    SuitProtocolError,
)
from edge_agent.transfer.link import SuitLink
from edge_agent.transfer.models import SuitStatus, UploadReceipt
from firmware_bridge.ble.protocol import (
    NONCE_BYTES,
    Enroll,
    EnrollReply,
    ErrorReply,
    ReleaseReceipt,
    derive_release_key,
)

__all__ = ["PAIR_TIMEOUT_S", "async_enroll", "sign_release"]

_LOGGER = logging.getLogger(__name__)

# Bound on BleakClient.pair(): room for an operator to read the passkey off
# the suit and type it into the OS agent.
PAIR_TIMEOUT_S = 120.0


async def async_enroll(
    link: SuitLink,
    status: SuitStatus,
    serial: str,
    address: str,
    store: BondStore,
) -> SuitBond:
    """Pair (bond) with the suit behind ``link``, enrol, store the bond.

    Raises:
        NotInPairingModeError: the status says the suit is not pairable.
        PairingError: the suit speaks protocol version 1, pairing failed or
            timed out, or the suit refused ENROLL.
        SuitLinkError, SuitProtocolError: as for any command.
    """
    who = link.who
    if status.protocol_version < 2:
        raise PairingError(
            f"{who}: speaks protocol version {status.protocol_version}, which "
            "has no bonding; update the suit's firmware"
        )
    if not status.pairing_mode:
        raise NotInPairingModeError(
            f"{who}: not in pairing mode; hold the suit's pairing button until "
            "it shows a passkey, then pair again within the window"
        )

    # Bond at the link layer (the OS, or bumble's SMP on the emulated radio).
    try:
        async with asyncio.timeout(PAIR_TIMEOUT_S):
            await link.client.pair()
    except TimeoutError as error:
        raise PairingError(
            f"{who}: pairing did not finish within {PAIR_TIMEOUT_S:.0f} s; was "
            "the passkey entered?"
        ) from error
    except BleakError as error:
        raise PairingError(
            f"{who}: pairing refused: {error}; check the passkey and that the "
            "suit is still in pairing mode"
        ) from error

    # Enrol: both nonces make the release key.
    gateway_nonce = secrets.token_bytes(NONCE_BYTES)
    try:
        reply = await link.async_command(lambda token: Enroll(token, gateway_nonce))
    except SuitLinkError as error:
        raise PairingError(
            f"{who}: the suit closed the link after pairing ({error}); it takes "
            "only Secure Connections pairing with passkey entry in pairing mode"
        ) from error
    if isinstance(reply, ErrorReply):
        raise PairingError(
            f"{who}: ENROLL refused ({reply.result.name}): the suit saw no "
            "pairing from this gateway in its current window; if the OS still "
            "holds an old bond with it, remove that bond and pair again"
        )
    if not isinstance(reply, EnrollReply):
        raise SuitProtocolError(f"{who}: ENROLL answered {reply}")
    bond = SuitBond(
        serial, address, derive_release_key(gateway_nonce, reply.suit_nonce)
    )
    store.put(bond)
    _LOGGER.info("%s: bonded and enrolled", who)
    return bond


def sign_release(
    who: str,
    store: BondStore | None,
    serial: str,
    log_id: str,
    sha256_hex: str,
    receipt: UploadReceipt,
) -> ReleaseReceipt:
    """Return the wire receipt for releasing ``log_id`` after ``receipt``.

    Raises:
        SuitNotBondedError: no bond store, or no bond with ``serial`` in it.
        ReleaseRefusedError: the receipt cannot be built (no object key, a
            bad SHA-256); nothing was sent.
    """
    try:
        digest = receipt.digest()
    except ValueError as error:
        raise ReleaseRefusedError(
            f"{who}: release of log {log_id} not sent: {error}", None
        ) from error
    bond = None if store is None else store.get(serial)
    if bond is None:
        where = "no bond store" if store is None else f"no bond in {store.path}"
        raise SuitNotBondedError(
            f"{who}: cannot sign the release of log {log_id}: {where}; pair the "
            "suit with this gateway",
            None,
        )
    return ReleaseReceipt.sign(bond.release_key, log_id, sha256_hex, digest)
