"""Pairing mode, bonds and command gating of the emulated suit.

The policy a production suit should follow, and this emulator enforces:

* **Pairing only in pairing mode.**  The rider holds the suit's button
  (:meth:`SuitGuard.enter_pairing_mode`); for a bounded time the suit accepts
  *one* SMP pairing.  Outside that window every Pairing Request is answered
  with Pairing Failed (Pairing Not Supported).
* **LE Secure Connections with bonding, MITM-protected by default.**  The
  suit displays a 6-digit passkey the operator types on the gateway
  (passkey entry).  A pairing that ends without SC, without bonding or --
  with ``mitm`` on -- by Just Works is dropped: its keys are deleted and the
  link is closed.  A suit without any display runs ``mitm=False`` and relies
  on the pairing window alone (weaker; see docs/ble-protocol.md).
* **Enrolment.**  On the freshly paired, encrypted link the gateway sends
  ENROLL; both sides derive the release key from two nonces.  Only the peer
  that paired in the current window may enrol, and enrolment closes the
  window.  A peer is *bonded* once enrolled.
* **Gating.**  With ``require_bond``, LIST_LOGS, READ_LOG and RELEASE_LOG are
  served only on an encrypted link to a bonded peer (ATT Insufficient
  Authentication otherwise; the control point's write permission already
  demands encryption), and RELEASE_LOG needs a receipt whose MAC verifies
  under that peer's release key.  Without ``require_bond`` (protocol
  version 1 behaviour) commands stay open, and a receipt, when sent, is
  still checked.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Callable

from bumble.att import ATT_Error, ErrorCode
from bumble.device import Connection
from bumble.keys import PairingKeys
from bumble.pairing import PairingConfig, PairingDelegate

from firmware_bridge.ble.keystore import BondKeyStore, PeerBond
from firmware_bridge.ble.protocol import (
    NONCE_BYTES,
    Opcode,
    ReleaseLog,
    ResultCode,
    derive_release_key,
)

__all__ = ["PAIRING_WINDOW_S", "SuitGuard", "SuitPairingDelegate"]

_LOGGER = logging.getLogger(__name__)

# How long pairing mode stays open after the rider holds the button: long
# enough to walk to the gateway and type the passkey, short enough that a
# stranger in radio range rarely finds the suit pairable.
PAIRING_WINDOW_S = 120.0

# Commands that touch the rider's logs; the rest act on a stream (which READ_LOG
# opened) or on pairing.
_PRIVILEGED = frozenset({Opcode.LIST_LOGS, Opcode.READ_LOG, Opcode.RELEASE_LOG})


class SuitPairingDelegate(PairingDelegate):
    """Answer SMP on the suit: accept only in pairing mode, show the passkey."""

    def __init__(self, guard: SuitGuard, peer: str) -> None:
        capability = (
            PairingDelegate.IoCapability.DISPLAY_OUTPUT_ONLY
            if guard.mitm
            else PairingDelegate.IoCapability.NO_OUTPUT_NO_INPUT
        )
        super().__init__(io_capability=capability)
        self._guard = guard
        self._peer = peer

    async def accept(self) -> bool:
        """Accept a Pairing Request only while the window is open and unused."""
        return self._guard.accepts_pairing(self._peer)

    async def display_number(self, number: int, digits: int) -> None:
        """Show the passkey (the emulator keeps it for tests and the demo)."""
        self._guard.show_passkey(number)


class SuitGuard:
    """Hold the suit's bonds and pairing window; decide what a link may do."""

    def __init__(
        self,
        serial: str,
        bonds: BondKeyStore,
        *,
        require_bond: bool,
        mitm: bool,
        on_change: Callable[[], None],
    ) -> None:
        self.serial = serial
        self.bonds = bonds
        self.require_bond = require_bond
        self.mitm = mitm
        self.passkey: int | None = None
        """The passkey shown for the pairing in progress (None when none)."""
        self.paired_peer: str | None = None
        """Identity address of the peer that paired in the current window."""
        self.pairings = 0
        self.pairings_refused = 0
        self._on_change = on_change
        self._passkey_shown = asyncio.Event()
        self._deadline: float | None = None
        self._timer: asyncio.TimerHandle | None = None

    # Pairing mode ---------------------------------------------------------------

    @property
    def pairing_mode(self) -> bool:
        """Return True while the pairing window is open."""
        return self._deadline is not None and time.monotonic() < self._deadline

    def enter_pairing_mode(self, duration_s: float) -> None:
        """Open the pairing window for ``duration_s`` seconds (call in the loop)."""
        if duration_s <= 0:
            raise ValueError(f"pairing window must be > 0 s, not {duration_s}")
        self.end_pairing_mode(notify=False)
        self._deadline = time.monotonic() + duration_s
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(duration_s, self.end_pairing_mode)
        _LOGGER.info("suit %s: pairing mode for %.0f s", self.serial, duration_s)
        self._on_change()

    def end_pairing_mode(self, notify: bool = True) -> None:
        """Close the pairing window now."""
        was_open = self._deadline is not None
        if self._timer is not None:
            self._timer.cancel()
        self._deadline = self._timer = None
        self.passkey = self.paired_peer = None
        self._passkey_shown.clear()
        if was_open and notify:
            _LOGGER.info("suit %s: pairing mode ended", self.serial)
            self._on_change()

    def on_pairing_start(self) -> None:
        """Blank the display: a new pairing shows a new passkey."""
        self.passkey = None
        self._passkey_shown.clear()

    def show_passkey(self, passkey: int) -> None:
        """Put ``passkey`` on the suit's display (and wake whoever waits for it)."""
        self.passkey = passkey
        self._passkey_shown.set()
        # The emulator's display is its log: an operator pairing a gateway
        # with ``firmware-bridge emulate`` reads the passkey here.
        _LOGGER.info("suit %s: display shows passkey %06d", self.serial, passkey)

    async def async_read_passkey(self, timeout_s: float) -> int | None:
        """Wait until a passkey is displayed; return it (None after timeout_s)."""
        try:
            async with asyncio.timeout(timeout_s):
                await self._passkey_shown.wait()
        except TimeoutError:
            return None
        return self.passkey

    def accepts_pairing(self, peer: str) -> bool:
        """Return True if a Pairing Request from ``peer`` may proceed now.

        The window takes one gateway: after a kept pairing only that same
        peer may pair again (its enrolment failed, say) until the window ends.
        """
        accepted = self.pairing_mode and self.paired_peer in (None, peer)
        if not accepted:
            self.pairings_refused += 1
            _LOGGER.warning(
                "suit %s: pairing request refused: %s",
                self.serial,
                "a gateway already paired in this window"
                if self.pairing_mode
                else "not in pairing mode",
            )
        return accepted

    def pairing_config(self, connection: Connection) -> PairingConfig:
        """Return the SMP configuration for one connection (bumble's factory)."""
        delegate = SuitPairingDelegate(self, str(connection.peer_address))
        return PairingConfig(sc=True, mitm=self.mitm, bonding=True, delegate=delegate)

    def on_paired(self, connection: Connection, keys: PairingKeys) -> bool:
        """Keep a finished pairing if it meets the policy; else forget its keys."""
        peer = str(connection.peer_address)
        bond = self.bonds.peer(peer)
        problem = None
        if not connection.sc:
            problem = "not LE Secure Connections"
        elif bond is None or keys.ltk is None:
            problem = "no bond (the gateway did not ask for bonding)"
        elif self.mitm and not bond.authenticated:
            problem = "Just Works, but this suit requires passkey entry"
        elif not self.pairing_mode or self.paired_peer not in (None, peer):
            problem = "pairing window closed meanwhile"
        if problem is not None:
            self.bonds.remove(peer)
            self.pairings_refused += 1
            _LOGGER.warning(
                "suit %s: pairing with %s dropped: %s", self.serial, peer, problem
            )
            return False
        self.paired_peer = peer
        self.pairings += 1
        _LOGGER.info("suit %s: paired with %s", self.serial, peer)
        return True

    # Enrolment and gating -----------------------------------------------------

    def enroll(self, connection: Connection, gateway_nonce: bytes) -> bytes | None:
        """Enrol the peer that paired in this window; return the suit's nonce."""
        peer = str(connection.peer_address)
        if not (
            connection.is_encrypted
            and self.pairing_mode
            and self.paired_peer == peer
            and self.bonds.peer(peer) is not None
        ):
            _LOGGER.warning(
                "suit %s: ENROLL from %s refused: it did not pair in an open "
                "pairing window",
                self.serial,
                peer,
            )
            return None
        suit_nonce = secrets.token_bytes(NONCE_BYTES)
        self.bonds.set_release_key(peer, derive_release_key(gateway_nonce, suit_nonce))
        _LOGGER.info("suit %s: bonded to gateway %s", self.serial, peer)
        self.end_pairing_mode()
        return suit_nonce

    def bonded_peer(self, connection: Connection) -> PeerBond | None:
        """Return the enrolled bond behind this link, if it is encrypted."""
        bond = self.bonds.peer(str(connection.peer_address))
        if (
            not connection.is_encrypted
            or bond is None
            or bond.release_key is None
            or (self.mitm and not bond.authenticated)
        ):
            return None
        return bond

    def check_command(self, connection: Connection, opcode: Opcode) -> None:
        """Raise ATT_Error if this link may not send ``opcode``."""
        if opcode is Opcode.ENROLL and not connection.is_encrypted:
            raise ATT_Error(ErrorCode.INSUFFICIENT_ENCRYPTION)
        if not self.require_bond or opcode not in _PRIVILEGED:
            return
        if self.bonded_peer(connection) is not None:
            return
        known = self.bonds.peer(str(connection.peer_address)) is not None
        _LOGGER.warning(
            "suit %s: %s from %s refused: link not bonded",
            self.serial,
            opcode.name,
            connection.peer_address,
        )
        if known and not connection.is_encrypted:
            raise ATT_Error(ErrorCode.INSUFFICIENT_ENCRYPTION)
        raise ATT_Error(ErrorCode.INSUFFICIENT_AUTHENTICATION)

    def check_receipt(
        self, connection: Connection, command: ReleaseLog
    ) -> ResultCode | None:
        """Return BAD_RECEIPT if the release's receipt is missing or forged."""
        receipt = command.receipt
        if receipt is None:
            return ResultCode.BAD_RECEIPT if self.require_bond else None
        bond = self.bonded_peer(connection)
        if bond is None or bond.release_key is None:
            return ResultCode.BAD_RECEIPT
        if not receipt.verify(bond.release_key, command.log_id, command.sha256_hex):
            return ResultCode.BAD_RECEIPT
        return None
