"""Installed model versions on the gateway disk, and the atomic swap.

::

    <dir>/slots/<version>/model.tflite
    <dir>/slots/<version>/model.json
    <dir>/slots/<version>/reference-crashes.npz
    <dir>/active   -> slots/<version>     symlink: the model the agent runs
    <dir>/previous -> slots/<version>     symlink: the one it ran before
    <dir>/state.json                      refused versions, last update

A version is staged in ``slots/.staging-<version>`` and renamed into place
(complete or absent). Activating points a new symlink at the slot and
renames it over ``active`` (one ``rename``, atomic on POSIX); the former
target becomes ``previous`` the same way. Restoring renames ``previous`` back
over ``active``. Only the active and previous slots are kept.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edge_agent.custody.durable import atomic_write_bytes, fsync_dir, fsync_file

__all__ = ["METADATA_FILE", "MODEL_FILE", "REFERENCE_FILE", "ModelSlots", "Slot"]

_LOGGER = logging.getLogger(__name__)

MODEL_FILE = "model.tflite"
METADATA_FILE = "model.json"
REFERENCE_FILE = "reference-crashes.npz"
_STAGING = ".staging-"


@dataclass(frozen=True)
class Slot:
    """One installed version's folder."""

    version: str
    path: Path

    @property
    def model(self) -> Path:
        """Return the ``.tflite`` file."""
        return self.path / MODEL_FILE

    @property
    def metadata(self) -> Path:
        """Return the metadata JSON."""
        return self.path / METADATA_FILE

    @property
    def reference(self) -> Path:
        """Return the reference crash file."""
        return self.path / REFERENCE_FILE


class ModelSlots:
    """The slots folder of one gateway; see the module docstring."""

    def __init__(self, root: Path) -> None:
        """Use ``root`` (created when needed)."""
        self.root = Path(root)
        self.slots_dir = self.root / "slots"
        self.state_path = self.root / "state.json"

    def _link(self, name: str) -> Slot | None:
        link = self.root / name
        try:
            target = os.readlink(link)
        except (FileNotFoundError, OSError):
            return None
        path = (self.root / target).resolve()
        return Slot(path.name, path) if path.is_dir() else None

    def active(self) -> Slot | None:
        """Return the active slot, or None (the agent runs the shipped model)."""
        return self._link("active")

    def previous(self) -> Slot | None:
        """Return the slot that was active before, if kept."""
        return self._link("previous")

    def stage(self, version: str, files: Mapping[str, Path]) -> Slot:
        """Copy ``files`` (slot file name -> source) into a new slot, atomically.

        An existing slot of the same version is replaced.
        """
        self.slots_dir.mkdir(parents=True, exist_ok=True)
        staging = self.slots_dir / f"{_STAGING}{version}"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir()
        for name, source in files.items():
            shutil.copyfile(source, staging / name)
            fsync_file(staging / name)
        fsync_dir(staging)
        final = self.slots_dir / version
        current = self.active()
        if final.exists() and (current is None or current.path != final.resolve()):
            shutil.rmtree(final)
        staging.rename(final)
        fsync_dir(self.slots_dir)
        return Slot(version, final)

    def _point(self, name: str, slot: Slot | None) -> None:
        link = self.root / name
        if slot is None:
            link.unlink(missing_ok=True)
        else:
            fresh = self.root / f".{name}.new"
            fresh.unlink(missing_ok=True)
            fresh.symlink_to(Path("slots") / slot.path.name)
            fresh.replace(link)
        fsync_dir(self.root)

    def activate(self, slot: Slot) -> Slot | None:
        """Make ``slot`` active; the former active becomes previous (returned)."""
        former = self.active()
        if former is not None and former.path != slot.path:
            self._point("previous", former)
        self._point("active", slot)
        return former

    def restore_previous(self) -> Slot | None:
        """Make the previous slot active again (None: none kept, active dropped).

        The failed slot is removed.
        """
        failed = self.active()
        previous = self.previous()
        self._point("active", previous)
        self._point("previous", None)
        if failed is not None and (previous is None or failed.path != previous.path):
            shutil.rmtree(failed.path, ignore_errors=True)
        return previous

    def prune(self) -> None:
        """Remove every slot but the active and previous ones."""
        keep = {s.path for s in (self.active(), self.previous()) if s is not None}
        if not self.slots_dir.is_dir():
            return
        for path in self.slots_dir.iterdir():
            if path.resolve() not in keep:
                shutil.rmtree(path, ignore_errors=True)

    # -- state ------------------------------------------------------------------

    def read_state(self) -> dict[str, Any]:
        """Return the state document (empty when absent or unreadable)."""
        try:
            state = json.loads(self.state_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            _LOGGER.warning("%s: unreadable, starting afresh: %s", self.state_path, exc)
            return {}
        return state if isinstance(state, dict) else {}

    def write_state(self, state: Mapping[str, Any]) -> None:
        """Replace the state document atomically."""
        self.root.mkdir(parents=True, exist_ok=True)
        data = (json.dumps(dict(state), indent=2, sort_keys=True) + "\n").encode()
        atomic_write_bytes(self.state_path, data)
