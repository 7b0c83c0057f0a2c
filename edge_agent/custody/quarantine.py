"""Set bad data aside under ``quarantine/`` with the reason, crash-safely.

Each quarantine is a directory ``quarantine/<name>/`` holding the data and a
``reason.json``. The reason file is written (and fsynced) *first*, as an
intent record listing what is to be moved or copied; then the data moves in;
then the index commits. Start-up recovery finishes any entry whose reason
file exists but whose index row does not, so a crash at any step leaves
neither lost bytes nor a log stuck between states.

Files inside the buffer are moved; files from elsewhere (an operator's
archive given to ``ingest``) are copied, because the original belongs to the
operator.
"""

from __future__ import annotations

import json
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlite_utils

from .durable import atomic_copy, atomic_write_bytes, durable_move, fsync_dir
from .errors import CustodyStorageError, InvalidTransitionError
from .index import fetch_log_row, update_log
from .paths import OUTPUTS_DIR, QUARANTINE_DIR, REASON_FILE
from .record import utc_now_iso
from .states import LogState

__all__ = [
    "QUARANTINABLE_STATES",
    "QUARANTINE_DIR",
    "REASON_FILE",
    "QuarantineMove",
    "carry_out",
    "commit_entry",
    "create_entry",
    "finish_pending",
    "insert_entry_row",
    "load_intent",
]

_LOGGER = logging.getLogger(__name__)

# A log may be set aside only before its data reached object storage; once
# uploaded, the cloud copy is the reference and the local bytes are not bad.
QUARANTINABLE_STATES = (LogState.PULLING, LogState.PULLED, LogState.PROCESSED)
# Entry directory names are tried as name, name.2, name.3, ...; a bound keeps
# a bug from looping forever over a full directory.
MAX_ENTRY_SUFFIX = 10_000


@dataclass(frozen=True)
class QuarantineMove:
    """One file or directory to bring into a quarantine entry."""

    source: Path
    target_name: str
    copy: bool = False

    def to_json(self) -> dict[str, Any]:
        """Return the JSON form written into the reason file."""
        return {
            "source": str(self.source),
            "target": self.target_name,
            "copy": self.copy,
        }


def create_entry(
    root: Path,
    base_name: str,
    *,
    log_id: str | None,
    original_path: str,
    reason: str,
    moves: list[QuarantineMove],
) -> Path:
    """Create a new entry directory and write its reason file (the intent)."""
    quarantine_root = root / QUARANTINE_DIR
    for suffix in range(1, MAX_ENTRY_SUFFIX + 1):
        name = base_name if suffix == 1 else f"{base_name}.{suffix}"
        entry = quarantine_root / name
        try:
            entry.mkdir()
        except FileExistsError:
            continue
        fsync_dir(quarantine_root)
        intent = {
            "name": name,
            "log_id": log_id,
            "original_path": original_path,
            "reason": reason,
            "moves": [move.to_json() for move in moves],
            "created_at": utc_now_iso(),
        }
        atomic_write_bytes(entry / REASON_FILE, json.dumps(intent, indent=2).encode())
        return entry
    raise CustodyStorageError(
        f"quarantine {quarantine_root}: {MAX_ENTRY_SUFFIX} entries named "
        f"{base_name!r} already exist; clean the quarantine folder"
    )


def load_intent(entry: Path) -> dict[str, Any]:
    """Return the intent (reason file) of a quarantine entry."""
    return _load_intent(entry)


def _load_intent(entry: Path) -> dict[str, Any]:
    with open(entry / REASON_FILE, "rb") as fh:
        intent: dict[str, Any] = json.load(fh)
    return intent


def carry_out(entry: Path) -> list[str]:
    """Move or copy the data the entry's reason file lists; skip what is done.

    Returns the names of the entry's data files and directories.
    """
    for move in _load_intent(entry)["moves"]:
        source = Path(move["source"])
        target = entry / move["target"]
        if target.exists() or not source.exists():
            continue
        if move["copy"]:
            atomic_copy(source, target)
        else:
            durable_move(source, target)
    return sorted(path.name for path in entry.iterdir() if path.name != REASON_FILE)


def _entry_size_bytes(entry: Path) -> int:
    return sum(
        path.stat().st_size
        for path in entry.rglob("*")
        if path.is_file() and path.name != REASON_FILE
    )


def commit_entry(
    db: sqlite_utils.Database, root: Path, entry: Path, files: list[str]
) -> int:
    """Record a carried-out entry in the index (and the log's new state).

    The caller holds the buffer lock. Returns the entry id.
    """
    intent = _load_intent(entry)
    log_id: str | None = intent["log_id"]
    relpath = str(entry.relative_to(root))
    with db.atomic():
        if log_id is not None:
            update_log(
                db,
                log_id,
                expect_states=QUARANTINABLE_STATES,
                new_state=LogState.QUARANTINED,
                error=intent["reason"],
                quarantine_relpath=relpath,
                raw_relpath=None,
                outputs_json="{}",
            )
        return insert_entry_row(db, root, entry, files)


def insert_entry_row(
    db: sqlite_utils.Database, root: Path, entry: Path, files: list[str]
) -> int:
    """Insert the index row of a carried-out entry (no log state change)."""
    intent = _load_intent(entry)
    table = db.table("quarantine")
    table.insert(
        {
            "name": intent["name"],
            "log_id": intent["log_id"],
            "original_path": intent["original_path"],
            "stored_relpath": str(entry.relative_to(root)),
            "reason": intent["reason"],
            "size_bytes": _entry_size_bytes(entry),
            "files_json": json.dumps(files),
            "quarantined_at": intent["created_at"],
        }
    )
    entry_id = table.last_pk
    return int(entry_id) if isinstance(entry_id, int) else 0


def finish_pending(db: sqlite_utils.Database, root: Path) -> int:
    """Complete quarantines interrupted by a crash; return how many were done."""
    quarantine_root = root / QUARANTINE_DIR
    known = {row["name"] for row in db.table("quarantine").rows}
    finished = 0
    for entry in sorted(quarantine_root.iterdir()):
        if not entry.is_dir() or entry.name in known:
            continue
        if not (entry / REASON_FILE).exists():
            # Crash before the intent was durable: nothing was moved yet.
            _LOGGER.warning("quarantine %s: no reason file, removing", entry)
            shutil.rmtree(entry)
            fsync_dir(quarantine_root)
            continue
        intent = _load_intent(entry)
        log_id = intent["log_id"]
        row = None if log_id is None else fetch_log_row(db, log_id)
        if log_id is not None and (
            row is None or LogState(row["state"]) not in QUARANTINABLE_STATES
        ):
            _LOGGER.error(
                "quarantine %s: log %r is %s, cannot finish its quarantine; "
                "the entry's data is kept",
                entry,
                log_id,
                "unknown" if row is None else row["state"],
            )
            continue
        files = carry_out(entry)
        commit_entry(db, root, entry, files)
        _LOGGER.warning(
            "quarantine %s: finished after restart (log %s): %s",
            entry.name,
            log_id,
            intent["reason"],
        )
        finished += 1
    return finished


def quarantine_log(
    db: sqlite_utils.Database, root: Path, row: dict[str, Any], reason: str
) -> Path:
    """Move a log's raw bytes and outputs aside and mark it quarantined.

    Raises:
        InvalidTransitionError: the log already reached object storage.
    """
    log_id = row["log_id"]
    if LogState(row["state"]) not in QUARANTINABLE_STATES:
        raise InvalidTransitionError(log_id, row["state"], "quarantined")
    moves = []
    if row["raw_relpath"]:
        raw = root / row["raw_relpath"]
        moves.append(QuarantineMove(raw, raw.name))
    outputs = root / OUTPUTS_DIR / log_id
    if outputs.exists():
        moves.append(QuarantineMove(outputs, "outputs"))
    entry = create_entry(
        root,
        log_id,
        log_id=log_id,
        original_path=row["raw_relpath"] or "",
        reason=reason,
        moves=moves,
    )
    commit_entry(db, root, entry, carry_out(entry))
    _LOGGER.error(
        "suit %s: log %s quarantined in %s: %s",
        row["suit_serial"],
        log_id,
        entry.relative_to(root),
        reason,
    )
    return entry


def quarantine_file(
    db: sqlite_utils.Database, root: Path, path: Path, reason: str
) -> Path:
    """Set a file aside: moved if it is under ``root``, else copied.

    Raises:
        FileNotFoundError: ``path`` does not exist.
    """
    source = path.resolve()
    if not source.exists():
        raise FileNotFoundError(f"quarantine: {source} does not exist")
    inside = source.is_relative_to(root)
    entry = create_entry(
        root,
        source.name,
        log_id=None,
        original_path=str(source),
        reason=reason,
        moves=[QuarantineMove(source, source.name, copy=not inside)],
    )
    commit_entry(db, root, entry, carry_out(entry))
    _LOGGER.error(
        "custody: %s quarantined in %s: %s", source, entry.relative_to(root), reason
    )
    return entry
