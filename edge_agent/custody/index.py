"""The custody index: one SQLite file (WAL) beside the log bytes.

Durability: the database runs in WAL mode with ``synchronous=FULL``, so the
WAL is fsynced at every commit and a committed state survives a power cut.
``NORMAL`` would only fsync at checkpoints and could lose the last commits on
power loss; the buffer would then still be consistent (files are always
durable before the state that needs them), but an upload or release would be
repeated. The commit rate is low (one per appended chunk, one per state
change), so the extra fsync per commit is cheap and the reasoning simpler.

Schema versions: 1 is the first release; 2 adds ``logs.evicted_at`` (local
copies deleted under the disk budget), ``logs.rebuilt_at`` (row recreated
from the files after the index was lost) and the ``meta`` key-value table
(the intake refusal the status shows). Opening a version-1 index for writing
adds them; a read-only open copes with their absence.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import sqlite_utils

from .errors import CustodyStorageError, InvalidTransitionError, UnknownLogError
from .record import utc_now_iso
from .states import LogState

__all__ = [
    "INDEX_FILE_NAME",
    "SCHEMA_VERSION",
    "fetch_log_row",
    "get_meta",
    "open_index",
    "set_meta",
    "update_log",
]

_LOGGER = logging.getLogger(__name__)

INDEX_FILE_NAME = "custody.db"
SCHEMA_VERSION = 2
# Seconds a writer waits for another connection's lock before failing: long
# enough for a checkpoint on slow flash, short enough to surface a stuck peer.
BUSY_TIMEOUT_S = 10.0


def _create_tables(db: sqlite_utils.Database) -> None:
    db.table("logs").create(
        {
            "log_id": str,
            "suit_serial": str,
            "rider_id": str,
            "state": str,
            "source": str,
            "size_bytes": int,
            "sha256_hex": str,
            "durable_offset": int,
            "raw_relpath": str,
            "original_name": str,
            "outputs_json": str,
            "analytics_json": str,
            "crash_detected": int,
            "object_keys_json": str,
            "pull_attempts": int,
            "error": str,
            "quarantine_relpath": str,
            "state_times_json": str,
            "created_at": str,
            "updated_at": str,
            "evicted_at": str,
            "rebuilt_at": str,
        },
        pk="log_id",
        not_null={
            "suit_serial",
            "state",
            "source",
            "size_bytes",
            "sha256_hex",
            "durable_offset",
            "outputs_json",
            "object_keys_json",
            "pull_attempts",
            "state_times_json",
            "created_at",
            "updated_at",
        },
        if_not_exists=True,
    )
    db.table("logs").create_index(["state"], if_not_exists=True)
    db.table("quarantine").create(
        {
            "entry_id": int,
            "name": str,
            "log_id": str,
            "original_path": str,
            "stored_relpath": str,
            "reason": str,
            "size_bytes": int,
            "files_json": str,
            "quarantined_at": str,
        },
        pk="entry_id",
        not_null={"name", "original_path", "stored_relpath", "reason"},
        if_not_exists=True,
    )
    db.table("quarantine").create_index(["name"], unique=True, if_not_exists=True)
    db.table("meta").create({"key": str, "value": str}, pk="key", if_not_exists=True)
    # Version 1 -> 2: columns added to an existing logs table.
    logs_columns = db.table("logs").columns_dict
    for column in ("evicted_at", "rebuilt_at"):
        if column not in logs_columns:
            db.table("logs").add_column(column, str)


def get_meta(db: sqlite_utils.Database, key: str) -> str | None:
    """Return a value of the ``meta`` table (None when unset or absent)."""
    if "meta" not in db.table_names():
        return None
    rows = list(db.table("meta").rows_where("key = ?", [key]))
    return None if not rows else rows[0]["value"]


def set_meta(db: sqlite_utils.Database, key: str, value: str | None) -> None:
    """Set (or with None delete) a value of the ``meta`` table."""
    with db.atomic():
        if value is None:
            db.execute("DELETE FROM meta WHERE key = ?", [key])
        else:
            db.table("meta").upsert({"key": key, "value": value}, pk="key")


def open_index(
    root: Path, *, read_only: bool = False
) -> tuple[sqlite_utils.Database, threading.RLock]:
    """Open the custody index under ``root`` (creating it unless read-only).

    Returns the database and the lock that serialises access to it; the
    connection may be used from several threads, one at a time.

    Raises:
        CustodyStorageError: the file is missing (read-only), not a database,
            or has a newer schema.
    """
    path = root / INDEX_FILE_NAME
    if read_only and not path.exists():
        raise CustodyStorageError(f"custody index {path}: no buffer here")
    try:
        if read_only:
            conn = sqlite3.connect(
                f"{path.resolve().as_uri()}?mode=ro",
                uri=True,
                timeout=BUSY_TIMEOUT_S,
                check_same_thread=False,
            )
        else:
            conn = sqlite3.connect(
                str(path), timeout=BUSY_TIMEOUT_S, check_same_thread=False
            )
        db = sqlite_utils.Database(conn)
        if not read_only:
            db.enable_wal()
            db.execute("PRAGMA synchronous=FULL")
        version = int(db.execute("PRAGMA user_version").fetchone()[0])
    except sqlite3.DatabaseError as exc:
        raise CustodyStorageError(
            f"custody index {path}: cannot open ({exc}); move it aside to start "
            "a fresh buffer, the log files stay in place"
        ) from exc
    if version > SCHEMA_VERSION:
        conn.close()
        raise CustodyStorageError(
            f"custody index {path}: schema version {version} is newer than this "
            f"agent understands ({SCHEMA_VERSION}); upgrade the agent"
        )
    if not read_only:
        with db.atomic():
            _create_tables(db)
            db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
    _LOGGER.debug("custody index %s open (schema %d)", path, SCHEMA_VERSION)
    return db, threading.RLock()


def fetch_log_row(db: sqlite_utils.Database, log_id: str) -> dict[str, Any] | None:
    """Return the index row of ``log_id``, or None when it is not registered."""
    rows = list(db.table("logs").rows_where("log_id = ?", [log_id]))
    return rows[0] if rows else None


def update_log(
    db: sqlite_utils.Database,
    log_id: str,
    *,
    expect_states: Iterable[LogState],
    new_state: LogState | None = None,
    **fields: Any,
) -> None:
    """Update a log row if it is in one of ``expect_states`` (compare-and-set).

    The caller holds the buffer lock and usually an open ``db.atomic()``
    block; a state change also stamps its time in ``state_times_json``.

    Raises:
        UnknownLogError: no such log.
        InvalidTransitionError: the log is in another state.
    """
    expected = [state.value for state in expect_states]
    row = fetch_log_row(db, log_id)
    if row is None:
        raise UnknownLogError(log_id)
    if row["state"] not in expected:
        target = new_state.value if new_state else "(update)"
        raise InvalidTransitionError(log_id, row["state"], target)
    now = utc_now_iso()
    updates: dict[str, Any] = dict(fields)
    updates["updated_at"] = now
    if new_state is not None:
        times = json.loads(row["state_times_json"])
        times[new_state.value] = now
        updates["state"] = new_state.value
        updates["state_times_json"] = json.dumps(times)
    assignments = ", ".join(f"[{name}] = ?" for name in updates)
    placeholders = ", ".join("?" for _ in expected)
    cursor = db.execute(
        f"UPDATE logs SET {assignments} WHERE log_id = ? AND state IN ({placeholders})",
        [*updates.values(), log_id, *expected],
    )
    if cursor.rowcount != 1:
        raise InvalidTransitionError(log_id, row["state"], str(updates.get("state")))
