"""Private scratch folders for plaintext working copies of encrypted files.

Processing opens a raw log by path and the uploader hashes and sends a CSV
by path, so with encryption on the buffer hands them plaintext copies in a
scratch folder that exists for one step only: created mode 0700 inside the
work folder (itself 0700), removed when the step ends, and any leftover of a
crashed step removed when the buffer opens.

On flash, deleted blocks keep their content until reused, so a scratch
folder there weakens the protection against flash theft (see
:mod:`~edge_agent.custody.crypto`). Give the buffer a work folder on tmpfs
(for example systemd's ``RuntimeDirectory=``, under ``/run``); RAM then has
to hold one log and its CSV at a time (about 2.4 times the raw log, measured
on a 1 kHz ride). When encryption is on and the work folder is not on a
RAM-backed file system, opening the buffer logs a warning saying so.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

__all__ = ["RAM_FILESYSTEMS", "Workspace", "filesystem_type"]

_LOGGER = logging.getLogger(__name__)

# File systems whose content never reaches flash.
RAM_FILESYSTEMS = frozenset({"tmpfs", "ramfs"})
_MOUNTS_FILE = Path("/proc/self/mounts")
_PRIVATE_DIR_MODE = 0o700


def filesystem_type(path: Path) -> str | None:
    """Return the type of the file system holding ``path`` (None if unknown)."""
    try:
        lines = _MOUNTS_FILE.read_text().splitlines()
    except OSError:
        return None
    target = str(path.resolve())
    best, best_type = "", None
    for line in lines:
        fields = line.split()
        if len(fields) < 3:
            continue
        mount_point = fields[1].replace("\\040", " ")
        inside = target == mount_point or target.startswith(
            mount_point.rstrip("/") + "/"
        )
        if inside and len(mount_point) >= len(best):
            best, best_type = mount_point, fields[2]
    return best_type


class Workspace:
    """The work folder and the per-step scratch folders inside it."""

    def __init__(self, root: Path) -> None:
        """Use ``root`` (created mode 0700 if missing)."""
        self.root = Path(root)

    def prepare(self) -> int:
        """Create the work folder and remove leftovers; return how many."""
        self.root.mkdir(mode=_PRIVATE_DIR_MODE, parents=True, exist_ok=True)
        os.chmod(self.root, _PRIVATE_DIR_MODE)
        removed = 0
        for leftover in self.root.iterdir():
            if leftover.is_dir() and not leftover.is_symlink():
                shutil.rmtree(leftover, ignore_errors=True)
            else:
                leftover.unlink(missing_ok=True)
            removed += 1
        return removed

    def on_ram(self) -> bool:
        """Tell whether the work folder is on a RAM-backed file system."""
        return filesystem_type(self.root) in RAM_FILESYSTEMS

    @contextlib.contextmanager
    def scratch(self, label: str) -> Iterator[Path]:
        """Yield a fresh private folder, removed with its content afterwards."""
        self.root.mkdir(mode=_PRIVATE_DIR_MODE, parents=True, exist_ok=True)
        folder = Path(tempfile.mkdtemp(prefix=f"{label}-", dir=self.root))
        try:
            yield folder
        finally:
            shutil.rmtree(folder, ignore_errors=True)
