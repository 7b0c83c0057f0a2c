"""The gateway's bonds with suits: serial -> address and release key.

The link-layer bond (LTK, IRK) lives where the OS keeps it: BlueZ's
/var/lib/bluetooth on a gateway, the emulated radio's ``keystore_path`` in
tests.  This store holds what the application adds on top, one entry per
suit serial: the suit's address and the release key both sides derived at
enrolment, which signs release receipts.

The file (``<workdir>/ble/bonds.json`` by default) is JSON, written
atomically with mode 0600, and re-read when another process (``edge-agent
pair``) changed it::

    {"schema": "suit-bonds/1",
     "suits": {"SN000123": {"address": "C0:00:00:00:01:00",
                            "release_key": "<64 hex>",
                            "paired_at": "2026-01-02T10:00:00.000+00:00"}}}
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from firmware_bridge.ble.bondfile import (
    BondFileError,
    read_json_object,
    write_private_json,
)

__all__ = ["BOND_FILE", "BondFileError", "BondStore", "SuitBond"]

_LOGGER = logging.getLogger(__name__)

SCHEMA = "suit-bonds/1"

# Where the bond file sits below the gateway's workdir.
BOND_FILE = Path("ble") / "bonds.json"

_HEX64 = re.compile(r"[0-9a-f]{64}")


@dataclasses.dataclass(frozen=True)
class SuitBond:
    """One suit this gateway is bonded to."""

    serial: str
    address: str
    release_key: bytes = dataclasses.field(repr=False)
    paired_at: str = dataclasses.field(
        default_factory=lambda: datetime.now(UTC).isoformat(timespec="milliseconds")
    )


class BondStore:
    """Keep the gateway's suit bonds in one private JSON file."""

    def __init__(self, path: Path) -> None:
        """Open (not create) the bond file at ``path``.

        Raises:
            BondFileError: the file exists but is not a bond file.
        """
        self.path = path
        self._bonds: dict[str, SuitBond] = {}
        self._stamp: tuple[int, int] | None = None
        self._refresh()

    @classmethod
    def for_workdir(cls, workdir: Path) -> BondStore:
        """Return the store at the default place below ``workdir``."""
        return cls(workdir / BOND_FILE)

    def _refresh(self) -> None:
        try:
            stat = os.stat(self.path)
        except FileNotFoundError:
            self._bonds, self._stamp = {}, None
            return
        stamp = (stat.st_mtime_ns, stat.st_size)
        if stamp == self._stamp:
            return
        document = read_json_object(self.path, SCHEMA) or {}
        self._bonds = {
            serial: self._parse(serial, entry)
            for serial, entry in document.get("suits", {}).items()
        }
        self._stamp = stamp

    def _parse(self, serial: str, entry: Any) -> SuitBond:
        where = f"bond file {self.path}: suit {serial!r}"
        if not isinstance(entry, dict):
            raise BondFileError(f"{where}: expected an object, found {entry!r:.40}")
        key = entry.get("release_key")
        if not isinstance(key, str) or not _HEX64.fullmatch(key):
            raise BondFileError(f"{where}: field 'release_key': expected 64 hex digits")
        for field in ("address", "paired_at"):
            if not isinstance(entry.get(field), str):
                raise BondFileError(f"{where}: field {field!r}: expected a string")
        return SuitBond(
            serial, entry["address"], bytes.fromhex(key), entry["paired_at"]
        )

    def _save(self) -> None:
        suits = {
            bond.serial: {
                "address": bond.address,
                "release_key": bond.release_key.hex(),
                "paired_at": bond.paired_at,
            }
            for bond in self._bonds.values()
        }
        write_private_json(self.path, {"schema": SCHEMA, "suits": suits})
        stat = os.stat(self.path)
        self._stamp = (stat.st_mtime_ns, stat.st_size)

    def get(self, serial: str) -> SuitBond | None:
        """Return the bond with suit ``serial``, or None."""
        self._refresh()
        return self._bonds.get(serial)

    def bonds(self) -> list[SuitBond]:
        """Return every bond, by serial."""
        self._refresh()
        return [self._bonds[serial] for serial in sorted(self._bonds)]

    def put(self, bond: SuitBond) -> None:
        """Store ``bond``, replacing an earlier one with the same serial."""
        self._refresh()
        self._bonds[bond.serial] = bond
        self._save()
        _LOGGER.info("suit %s: bond stored in %s", bond.serial, self.path)

    def remove(self, serial: str) -> bool:
        """Forget suit ``serial``; return False if there was no bond."""
        self._refresh()
        if self._bonds.pop(serial, None) is None:
            return False
        self._save()
        return True
