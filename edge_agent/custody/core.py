"""State shared by the buffer's parts, and its read-only queries.

:class:`~edge_agent.custody.buffer.CustodyBuffer` is assembled from classes
by concern: this core (index, lock, queries), the log lifecycle after the
pull (:mod:`.lifecycle`) and plaintext access to encrypted files
(:mod:`.access`).
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlite_utils

from .budget import DiskBudget
from .errors import EncryptedDataError, ReadOnlyBufferError, UnknownLogError
from .files import DataFiles
from .index import fetch_log_row
from .intake import check_log_id
from .paths import OUTPUTS_DIR
from .record import LogRecord, PendingWork, QuarantineEntry, RetentionPolicy, parse_time
from .states import LogState, next_action
from .workspace import Workspace

__all__ = ["BufferCore"]

_LOGGER = logging.getLogger(__name__)


class BufferCore:
    """The index, lock, files and settings of a buffer, and queries on them."""

    _root: Path
    _retention: RetentionPolicy
    _read_only: bool
    _files: DataFiles
    _workspace: Workspace
    _budget: DiskBudget
    _db: sqlite_utils.Database
    _lock: threading.RLock

    def _require_writable(self, what: str) -> None:
        if self._read_only:
            raise ReadOnlyBufferError(
                f"custody buffer {self._root}: opened read-only, cannot {what}"
            )

    @property
    def root(self) -> Path:
        """Return the buffer's root directory."""
        return self._root

    @property
    def retention(self) -> RetentionPolicy:
        """Return the retention policy applied by :meth:`purge`."""
        return self._retention

    @property
    def encrypted(self) -> bool:
        """Tell whether new log bytes and outputs are written encrypted."""
        return self._files.encrypting

    @property
    def budget_bytes(self) -> int | None:
        """Return the disk budget (None: unlimited)."""
        return self._budget.budget_bytes

    def _record(self, row: dict[str, Any]) -> LogRecord:
        """Build a record, opening sealed analytics when the key is at hand.

        Analytics that fail to open (another key, an altered index) read as
        None with an ERROR, rather than failing every query of the buffer;
        the encrypted output files still refuse a wrong key where it matters.
        """
        try:
            text = self._files.decode_analytics(row["log_id"], row["analytics_json"])
        except EncryptedDataError as exc:
            _LOGGER.error("log %s: analytics unreadable: %s", row["log_id"], exc)
            text = None
        return LogRecord.from_row({**row, "analytics_json": text}, self._root)

    def _row(self, log_id: str) -> dict[str, Any]:
        row = fetch_log_row(self._db, log_id)
        if row is None:
            raise UnknownLogError(log_id)
        return row

    def get(self, log_id: str) -> LogRecord:
        """Return the record of ``log_id``.

        Raises:
            UnknownLogError: no such log.
        """
        with self._lock:
            return self._record(self._row(log_id))

    def find(self, log_id: str) -> LogRecord | None:
        """Return the record of ``log_id``, or None if it is not registered."""
        with self._lock:
            row = fetch_log_row(self._db, log_id)
        return None if row is None else self._record(row)

    def logs(self, states: Iterable[LogState] | None = None) -> list[LogRecord]:
        """Return the logs in ``states`` (all when None), oldest first."""
        with self._lock:
            table = self._db.table("logs")
            if states is None:
                rows = list(table.rows_where(order_by="created_at, log_id"))
            else:
                wanted = [LogState(state).value for state in states]
                if not wanted:
                    return []
                marks = ", ".join("?" for _ in wanted)
                rows = list(
                    table.rows_where(
                        f"state IN ({marks})", wanted, order_by="created_at, log_id"
                    )
                )
        return [self._record(row) for row in rows]

    def counts_by_state(self) -> dict[LogState, int]:
        """Return how many logs are in each state (every state present)."""
        counts = dict.fromkeys(LogState, 0)
        with self._lock:
            cursor = self._db.execute("SELECT state, COUNT(*) FROM logs GROUP BY state")
            for state, count in cursor.fetchall():
                counts[LogState(state)] = int(count)
        return counts

    def pending_work(self) -> list[PendingWork]:
        """Return every log that waits for an action, oldest first."""
        work = []
        for record in self.logs():
            action = next_action(record.state)
            if action is not None:
                work.append(PendingWork(action=action, record=record))
        return work

    def quarantine_entries(self) -> list[QuarantineEntry]:
        """Return every quarantine entry, oldest first."""
        with self._lock:
            rows = list(self._db.table("quarantine").rows_where(order_by="entry_id"))
        return [
            QuarantineEntry(
                entry_id=row["entry_id"],
                name=row["name"],
                log_id=row["log_id"],
                original_path=row["original_path"],
                stored_path=self._root / row["stored_relpath"],
                reason=row["reason"],
                size_bytes=row["size_bytes"] or 0,
                quarantined_at=parse_time(row["quarantined_at"]),
                files=json.loads(row["files_json"] or "[]"),
            )
            for row in rows
        ]

    def last_upload_time(self) -> datetime | None:
        """Return when a log was last marked uploaded, or None if never."""
        stamps = [
            record.state_times[LogState.UPLOADED]
            for record in self.logs(
                [LogState.UPLOADED, LogState.RELEASED, LogState.PURGED]
            )
            if LogState.UPLOADED in record.state_times
        ]
        return max(stamps) if stamps else None

    def disk_usage_bytes(self) -> int:
        """Return the bytes of every file under the buffer root (index too)."""
        total = 0
        for folder, _dirs, files in os.walk(self._root):
            for name in files:
                try:
                    total += os.stat(os.path.join(folder, name)).st_size
                except FileNotFoundError:
                    continue  # removed while walking
        return total

    def output_dir(self, log_id: str) -> Path:
        """Create and return the folder that keeps a log's recorded outputs.

        Processing should write into :meth:`processing_dir` instead, which is
        this folder when encryption is off.
        """
        self._require_writable("create an output folder")
        check_log_id(log_id)
        folder = self._root / OUTPUTS_DIR / log_id
        folder.mkdir(parents=True, exist_ok=True)
        return folder
