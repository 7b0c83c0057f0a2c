"""Keep the buffer under its disk budget: refuse new logs, evict what is safe.

Accounting, in bytes:

* ``used``: every file under the buffer root (index and its WAL, the upload
  journal, logs, outputs, quarantine, set-aside indexes), except the work
  folder of plaintext copies, which only lives for one step;
* ``reserved``: growth already promised: a log being pulled will still
  receive its missing bytes, and every log not yet processed will get
  outputs of about ``OUTPUT_RESERVE_RATIO`` times its size. Without this
  reservation a full buffer of raw logs could not be processed, hence never
  uploaded, hence never freed;
* a new log of ``n`` bytes needs ``n * (1 + OUTPUT_RESERVE_RATIO)``.

When a new log does not fit, local copies that object storage already holds
are evicted, in this order: logs the suit was told to erase (``released``,
and ``purged`` logs whose raw bytes were kept) before logs still waiting for
that release (``uploaded``); logs without a detected crash before crash logs;
oldest first within each class. A log being pulled, pulled, processed or
quarantined is never evicted, so nothing that is not yet in object storage
is lost. If eviction cannot make room, the log is refused
(:class:`~edge_agent.custody.errors.BufferFullError`) with a reason the
agent's status shows; the suit keeps the log and the pull happens on a later
dock once uploads have freed space.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlite_utils

from .durable import fsync_dir
from .errors import BufferFullError
from .index import get_meta, set_meta, update_log
from .paths import OUTPUTS_DIR, QUARANTINE_DIR
from .record import utc_now_iso
from .states import LogState

__all__ = [
    "OUTPUT_RESERVE_RATIO",
    "DiskBudget",
    "SpaceStatus",
    "delete_local_copies",
]

_LOGGER = logging.getLogger(__name__)

# Outputs per byte of raw log: the gzip CSV of a 1 kHz synthetic ride was
# 1.37 times its suit log (12.2 MB for 9.0 MB); 1.5 leaves room for the
# analytics JSON and for rides that compress worse.
OUTPUT_RESERVE_RATIO = 1.5
# Key of the meta row holding the reason intake is refused (absent: accepting).
REFUSAL_KEY = "intake_refusal"

_STATE_RANK = {LogState.RELEASED: 0, LogState.PURGED: 0, LogState.UPLOADED: 1}


@dataclass(frozen=True)
class SpaceStatus:
    """The buffer's disk use against its budget, for status and decisions."""

    budget_bytes: int | None
    used_bytes: int
    reserved_bytes: int
    evictable_bytes: int
    quarantine_bytes: int
    refusal: str | None

    @property
    def free_bytes(self) -> int | None:
        """Return the room left for new logs before eviction (None: no budget)."""
        if self.budget_bytes is None:
            return None
        return self.budget_bytes - self.used_bytes - self.reserved_bytes


def _tree_bytes(folder: Path, skip: Path | None) -> int:
    total = 0
    for current, dirs, names in os.walk(folder):
        if skip is not None:
            dirs[:] = [d for d in dirs if Path(current, d) != skip]
        for name in names:
            try:
                total += os.lstat(os.path.join(current, name)).st_size
            except FileNotFoundError:
                continue  # removed while walking
    return total


def _local_paths(root: Path, row: dict[str, Any]) -> list[Path]:
    """Return the files and folders a log holds in the buffer."""
    paths = []
    if row["raw_relpath"] and not Path(row["raw_relpath"]).is_absolute():
        paths.append(root / row["raw_relpath"])
    for meta in json.loads(row["outputs_json"]).values():
        if not Path(meta["path"]).is_absolute():
            paths.append(root / meta["path"])
    paths.append(root / OUTPUTS_DIR / row["log_id"])
    return paths


def _size_of(path: Path) -> int:
    if path.is_dir():
        return _tree_bytes(path, None)
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def delete_local_copies(
    root: Path, row: dict[str, Any], *, keep_raw: bool
) -> tuple[int, str | None]:
    """Delete a log's outputs (and raw bytes unless ``keep_raw``), durably.

    Returns the bytes freed and the raw file's relative path if it is kept.
    Files already gone are skipped, so a crash half-way is harmless.
    """
    freed = 0
    raw_relpath = row["raw_relpath"]
    for path in _local_paths(root, row):
        is_raw = raw_relpath is not None and path == root / raw_relpath
        if (is_raw and keep_raw) or not path.exists():
            continue
        freed += _size_of(path)
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink()
        fsync_dir(path.parent)
    return freed, (raw_relpath if keep_raw else None)


class DiskBudget:
    """Decide whether a new log fits, and make room for it by eviction."""

    def __init__(
        self, root: Path, budget_bytes: int | None, *, skip: Path | None = None
    ) -> None:
        """Budget ``root`` to ``budget_bytes`` (None: unlimited), not counting
        ``skip`` (the work folder)."""
        if budget_bytes is not None and budget_bytes <= 0:
            raise ValueError(f"budget_bytes must be positive, got {budget_bytes}")
        self.root = root
        self.budget_bytes = budget_bytes
        self._skip = skip

    def _candidates(self, db: sqlite_utils.Database) -> list[dict[str, Any]]:
        # Purged logs hold files only when the retention kept their raw bytes;
        # skipping the others keeps this cheap on a gateway with years of rows.
        where = "(state IN (?, ?) OR (state = ? AND raw_relpath IS NOT NULL))"
        if "evicted_at" in db.table("logs").columns_dict:  # absent in schema 1
            where = f"evicted_at IS NULL AND {where}"
        values = [LogState.RELEASED.value, LogState.UPLOADED.value]
        rows = [
            row
            for row in db.table("logs").rows_where(
                where, [*values, LogState.PURGED.value]
            )
            if any(path.exists() for path in _local_paths(self.root, row))
        ]
        rows.sort(
            key=lambda row: (
                bool(row["crash_detected"]),
                _STATE_RANK[LogState(row["state"])],
                row["created_at"],
                row["log_id"],
            )
        )
        return rows

    def status(self, db: sqlite_utils.Database) -> SpaceStatus:
        """Return the current use, reservations and what eviction could free."""
        reserved = 0.0
        for row in db.table("logs").rows_where(
            "state IN (?, ?)", [LogState.PULLING.value, LogState.PULLED.value]
        ):
            size_bytes = int(row["size_bytes"])
            reserved += size_bytes * OUTPUT_RESERVE_RATIO
            if row["state"] == LogState.PULLING.value:
                reserved += max(0, size_bytes - int(row["durable_offset"]))
        evictable = sum(
            sum(_size_of(path) for path in _local_paths(self.root, row))
            for row in self._candidates(db)
        )
        return SpaceStatus(
            budget_bytes=self.budget_bytes,
            used_bytes=_tree_bytes(self.root, self._skip),
            reserved_bytes=int(reserved),
            evictable_bytes=evictable,
            quarantine_bytes=_tree_bytes(self.root / QUARANTINE_DIR, None),
            refusal=get_meta(db, REFUSAL_KEY),
        )

    @staticmethod
    def need_bytes(size_bytes: int) -> int:
        """Return the room a new log of ``size_bytes`` takes with its outputs."""
        return int(size_bytes * (1 + OUTPUT_RESERVE_RATIO))

    def check(
        self, db: sqlite_utils.Database, log_id: str, size_bytes: int
    ) -> tuple[bool, str, SpaceStatus]:
        """Tell whether a new log fits (counting what eviction can free), and why."""
        space = self.status(db)
        need = self.need_bytes(size_bytes)
        if self.budget_bytes is None:
            return True, "no disk budget configured", space
        free = self.budget_bytes - space.used_bytes - space.reserved_bytes
        if need > self.budget_bytes:
            return (
                False,
                f"log {log_id} needs {need} bytes ({size_bytes} raw plus outputs), "
                f"more than the whole buffer budget of {self.budget_bytes} bytes; "
                "raise [custody] budget_bytes",
                space,
            )
        if need <= free + space.evictable_bytes:
            return True, f"fits: needs {need} bytes, {free} free", space
        quarantine = (
            f", {space.quarantine_bytes} in quarantine (inspect and clear "
            f"{self.root / QUARANTINE_DIR})"
            if space.quarantine_bytes
            else ""
        )
        return (
            False,
            f"buffer full: {space.used_bytes} of {self.budget_bytes} bytes used, "
            f"{space.reserved_bytes} reserved for pulls and processing in "
            f"progress{quarantine}; log {log_id} needs {need} bytes and "
            f"eviction can free only {space.evictable_bytes}; waiting for "
            "uploads to free space",
            space,
        )

    def admit(
        self, db: sqlite_utils.Database, log_id: str, size_bytes: int
    ) -> list[str]:
        """Make room for a new log by eviction, or refuse it.

        Returns the ids of the logs evicted.

        Raises:
            BufferFullError: the log does not fit even after eviction.
        """
        fits, reason, space = self.check(db, log_id, size_bytes)
        if not fits:
            self._refuse(db, reason, space)
        evicted: list[str] = []
        if self.budget_bytes is not None:
            missing = self.need_bytes(size_bytes) - (space.free_bytes or 0)
            for row in self._candidates(db):
                if missing <= 0:
                    break
                missing -= self.evict(db, row)
                evicted.append(row["log_id"])
        if space.refusal is not None:
            set_meta(db, REFUSAL_KEY, None)
            _LOGGER.info("custody %s: room again, intake resumed", self.root)
        return evicted

    def _refuse(
        self, db: sqlite_utils.Database, reason: str, space: SpaceStatus
    ) -> None:
        if space.refusal is None:
            _LOGGER.warning("custody %s: new logs refused: %s", self.root, reason)
        else:
            _LOGGER.info("custody %s: still refusing new logs: %s", self.root, reason)
        set_meta(db, REFUSAL_KEY, reason)
        raise BufferFullError(
            reason,
            used_bytes=space.used_bytes + space.reserved_bytes,
            budget_bytes=self.budget_bytes or 0,
        )

    def evict(self, db: sqlite_utils.Database, row: dict[str, Any]) -> int:
        """Delete the local copies of a log object storage holds; return bytes."""
        freed, _kept = delete_local_copies(self.root, row, keep_raw=False)
        state = LogState(row["state"])
        with db.atomic():
            update_log(
                db,
                row["log_id"],
                expect_states=[state],
                new_state=LogState.PURGED if state is LogState.RELEASED else None,
                raw_relpath=None,
                outputs_json="{}",
                evicted_at=utc_now_iso(),
            )
        _LOGGER.info(
            "suit %s: log %s (%s%s) evicted under the disk budget, %d bytes freed",
            row["suit_serial"],
            row["log_id"],
            state.value,
            ", crash" if row["crash_detected"] else "",
            freed,
        )
        return freed
