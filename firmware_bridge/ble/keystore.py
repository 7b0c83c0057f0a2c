"""LE bond storage for the emulated devices: bumble's KeyStore, in memory or a file.

One :class:`BondKeyStore` holds, per peer identity address, the keys SMP
distributed at pairing (LTK, IRK) and -- on the suit -- the release key the
peer enrolled afterwards.  It is what BlueZ keeps under /var/lib/bluetooth on
a real gateway, and what a suit keeps in its flash.

With a path the store is a JSON file written atomically (temporary file,
fsync, rename) with mode 0600, like BlueZ's own bond files; without one it
lives in memory and dies with the device.  Writes are synchronous and small
(one bond is about 300 bytes) and happen once per pairing.

A new pairing with a peer replaces its keys and drops its release key: the
enrolment belonged to the old bond.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any

from bumble.keys import KeyStore, PairingKeys

from firmware_bridge.ble.bondfile import (
    BondFileError,
    read_json_object,
    write_private_json,
)

__all__ = ["BondFileError", "BondKeyStore", "PeerBond"]

_LOGGER = logging.getLogger(__name__)

SCHEMA = "ble-bonds/1"


@dataclasses.dataclass(frozen=True)
class PeerBond:
    """One bonded peer: its SMP keys and, once enrolled, the release key."""

    address: str
    keys: PairingKeys
    release_key: bytes | None = None

    @property
    def authenticated(self) -> bool:
        """Return True if the LTK came from an MITM-protected pairing."""
        ltk = self.keys.ltk or self.keys.ltk_central or self.keys.ltk_peripheral
        return ltk is not None and ltk.authenticated


class BondKeyStore(KeyStore):
    """Keep bonds per peer address, in memory or in a private JSON file."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path
        self._bonds: dict[str, PeerBond] = {}
        self._local_address: str | None = None
        document = read_json_object(path, SCHEMA) if path is not None else None
        if document is not None:
            self._load(document)

    def _load(self, document: dict[str, Any]) -> None:
        try:
            self._local_address = document.get("local_address")
            for address, entry in document.get("peers", {}).items():
                release = entry.get("release_key")
                self._bonds[address] = PeerBond(
                    address,
                    PairingKeys.from_dict(entry["keys"]),
                    None if release is None else bytes.fromhex(release),
                )
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            raise BondFileError(
                f"bond file {self.path}: bad entry: {type(error).__name__}: {error}"
            ) from None

    def _save(self) -> None:
        if self.path is None:
            return
        peers = {
            address: {
                "keys": bond.keys.to_dict(),
                "release_key": None
                if bond.release_key is None
                else bond.release_key.hex(),
            }
            for address, bond in self._bonds.items()
        }
        write_private_json(
            self.path,
            {"schema": SCHEMA, "local_address": self._local_address, "peers": peers},
        )

    # Synchronous access for the suit's per-command checks ----------------------

    def peer(self, address: str) -> PeerBond | None:
        """Return the bond with ``address`` (bumble's ``str(Address)``) or None."""
        return self._bonds.get(address)

    def peers(self) -> list[PeerBond]:
        """Return every bond."""
        return list(self._bonds.values())

    def set_release_key(self, address: str, release_key: bytes) -> None:
        """Enrol the bonded peer ``address`` with ``release_key``."""
        bond = self._bonds[address]
        self._bonds[address] = dataclasses.replace(bond, release_key=release_key)
        self._save()

    def remove(self, address: str) -> None:
        """Forget the bond with ``address`` (nothing happens if there is none)."""
        if self._bonds.pop(address, None) is not None:
            self._save()

    @property
    def local_address(self) -> str | None:
        """Return the identity address the owning device used when it bonded."""
        return self._local_address

    @local_address.setter
    def local_address(self, address: str) -> None:
        if address != self._local_address:
            self._local_address = address
            self._save()

    # bumble's KeyStore interface ------------------------------------------------

    async def get(self, name: str) -> PairingKeys | None:
        """Return the SMP keys of peer ``name``."""
        bond = self._bonds.get(name)
        return None if bond is None else bond.keys

    async def update(self, name: str, keys: PairingKeys) -> None:
        """Store keys from a new pairing; any earlier enrolment is dropped."""
        self._bonds[name] = PeerBond(name, keys)
        self._save()
        _LOGGER.debug("bond with %s stored", name)

    async def delete(self, name: str) -> None:
        """Forget peer ``name``."""
        self.remove(name)

    async def get_all(self) -> list[tuple[str, PairingKeys]]:
        """Return (address, keys) of every bond."""
        return [(address, bond.keys) for address, bond in self._bonds.items()]

    async def delete_all(self) -> None:
        """Forget every bond."""
        self._bonds.clear()
        self._save()
