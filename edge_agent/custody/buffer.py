"""The custody buffer: log bytes on disk, their states in a SQLite index.

A log is the gateway's responsibility from the first byte pulled from the
suit until object storage has committed it and the suit was told it may
erase it. The buffer keeps that custody crash-safe:

* every byte range is written and fsynced before the index records it as
  durable, and a file is fsynced (its directory too after a create or rename)
  before any state change that relies on it is committed;
* on open, :func:`~edge_agent.custody.recovery.recover` trims the disk to
  what the index says, so a restart in any state resumes from that state;
* bad data is never deleted, it is quarantined with a reason.

Layout under the root directory::

    custody.db                 the index (WAL)
    custody.lock               held (flock) by the process that owns the buffer
    logs/<log_id>.bin          raw log bytes pulled from a suit
    logs/<log_id><suffix>      files imported from an archive
    outputs/<log_id>/...       processing outputs (see output_dir())
    quarantine/<name>/         bad data and its reason.json

Appends fsync once per call, so callers should hand over chunks of a few
KiB or more rather than every BLE notification.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import shutil
from collections.abc import Iterable, Mapping
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any

from .durable import fsync_dir, fsync_file, sha256_file
from .errors import (
    CustodyBusyError,
    InvalidTransitionError,
    ReadOnlyBufferError,
    UnknownLogError,
)
from .index import fetch_log_row, open_index, update_log
from .intake import (
    MAX_PULL_ATTEMPTS,
    append_bytes,
    begin_pull,
    check_log_id,
    complete_pull,
    import_file,
)
from .paths import LOCK_FILE_NAME, LOGS_DIR, OUTPUTS_DIR, QUARANTINE_DIR, REASON_FILE
from .quarantine import quarantine_file, quarantine_log
from .record import (
    LogRecord,
    PendingWork,
    QuarantineEntry,
    RetentionPolicy,
    parse_time,
)
from .recovery import RecoveryReport, recover
from .states import LogState, next_action

__all__ = ["MAX_PULL_ATTEMPTS", "CustodyBuffer"]

_LOGGER = logging.getLogger(__name__)


def _relative(root: Path, path: Path) -> str:
    """Store paths under the root relative to it, others absolute."""
    resolved = path.resolve()
    try:
        return str(resolved.relative_to(root))
    except ValueError:
        return str(resolved)


class CustodyBuffer:
    """Crash-safe custody of suit logs between the BLE link and the uploader.

    Implements the ``LogSink`` protocol of the transfer layer (``begin_log``,
    ``append_log_bytes``, ``complete_log``). Safe to call from several
    threads; calls are serialised.
    """

    def __init__(
        self,
        root: Path,
        *,
        retention: RetentionPolicy | None = None,
        read_only: bool = False,
    ) -> None:
        """Open the buffer at ``root``; prefer :meth:`open`."""
        self._root = root.resolve()
        self._retention = retention or RetentionPolicy()
        self._read_only = read_only
        self._lock_fd: int | None = None
        self.last_recovery = RecoveryReport()
        if read_only:
            self._db, self._lock = open_index(self._root, read_only=True)
            return
        for folder in (LOGS_DIR, OUTPUTS_DIR, QUARANTINE_DIR):
            (self._root / folder).mkdir(parents=True, exist_ok=True)
        fsync_dir(self._root)
        fsync_dir(self._root.parent)
        self._lock_fd = self._take_process_lock()
        try:
            self._db, self._lock = open_index(self._root)
            with self._lock:
                self.last_recovery = recover(self._db, self._root)
        except BaseException:
            os.close(self._lock_fd)
            raise

    def _take_process_lock(self) -> int:
        """Hold an exclusive flock so that one process at a time owns the buffer.

        Start-up recovery trims files to what the index says; run by a
        second process it would cut bytes the first one is still writing.
        """
        path = self._root / LOCK_FILE_NAME
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            os.close(fd)
            raise CustodyBusyError(
                f"custody buffer {self._root}: held by another process (lock "
                f"{path}); stop that agent, or open the buffer read-only"
            ) from exc
        return fd

    @classmethod
    def open(
        cls,
        root: Path,
        *,
        retention: RetentionPolicy | None = None,
        read_only: bool = False,
    ) -> CustodyBuffer:
        """Open (creating if needed) the buffer in ``root`` and recover it.

        Only one process may open a buffer for writing at a time. A read-only
        buffer (for ``status``) needs no lock, runs no recovery, and refuses
        every change.

        Raises:
            CustodyBusyError: another process holds the buffer.
            CustodyStorageError: the index cannot be opened or is too new.
        """
        return cls(Path(root), retention=retention, read_only=read_only)

    def close(self) -> None:
        """Close the index and release the buffer; do not use it afterwards."""
        with self._lock:
            self._db.close()
            if self._lock_fd is not None:
                os.close(self._lock_fd)
                self._lock_fd = None

    def _require_writable(self, what: str) -> None:
        if self._read_only:
            raise ReadOnlyBufferError(
                f"custody buffer {self._root}: opened read-only, cannot {what}"
            )

    def __enter__(self) -> CustodyBuffer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def root(self) -> Path:
        """Return the buffer's root directory."""
        return self._root

    @property
    def retention(self) -> RetentionPolicy:
        """Return the retention policy applied by :meth:`purge`."""
        return self._retention

    # -- LogSink -----------------------------------------------------------

    def begin_log(
        self, suit_serial: str, log_id: str, size_bytes: int, sha256_hex: str
    ) -> int:
        """Register a log to pull (idempotent) and return its resume offset.

        A log already complete returns ``size_bytes``: nothing left to pull.
        A log quarantined after a failed pull starts again at 0, up to
        ``MAX_PULL_ATTEMPTS`` pulls.

        Raises:
            ValueError: malformed log id, size or digest.
            LogConflictError: the id is known with another size or digest.
            QuarantinedLogError: the log failed too many pulls.
        """
        self._require_writable("begin a log")
        with self._lock:
            return begin_pull(
                self._db, self._root, suit_serial, log_id, size_bytes, sha256_hex
            )

    def append_log_bytes(self, log_id: str, offset: int, data: bytes) -> None:
        """Write ``data`` at ``offset`` durably, then record the new offset.

        Raises:
            UnknownLogError: ``begin_log`` was not called for this id.
            InvalidTransitionError: the log is not being pulled.
            OffsetMismatchError: ``offset`` is not the durable end, or the data
                runs past the announced size.
        """
        self._require_writable("append log bytes")
        with self._lock:
            append_bytes(self._db, self._root, log_id, offset, data)

    def complete_log(self, log_id: str) -> None:
        """Verify the log's SHA-256 and mark it pulled (idempotent).

        Raises:
            IncompleteLogError: not every byte is stored yet.
            ChecksumMismatchError: the digest differs; the bytes were
                quarantined and the log may be pulled again.
        """
        self._require_writable("complete a log")
        with self._lock:
            complete_pull(self._db, self._root, log_id)

    # -- Ingest -----------------------------------------------------------

    def register_imported(
        self,
        path: Path,
        suit_serial: str,
        log_id: str,
        *,
        rider_id: str | None = None,
    ) -> LogRecord:
        """Copy an archived file into the buffer and register it as pulled.

        Idempotent: importing the same bytes under the same id again returns
        the existing record.

        Raises:
            ValueError: malformed log id.
            FileNotFoundError: ``path`` does not exist.
            LogConflictError: the id is known with different content.
        """
        self._require_writable("import a file")
        import_file(
            self._db, self._root, self._lock, Path(path), suit_serial, log_id, rider_id
        )
        return self.get(log_id)

    # -- Queries ----------------------------------------------------------

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
            return LogRecord.from_row(self._row(log_id), self._root)

    def find(self, log_id: str) -> LogRecord | None:
        """Return the record of ``log_id``, or None if it is not registered."""
        with self._lock:
            row = fetch_log_row(self._db, log_id)
        return None if row is None else LogRecord.from_row(row, self._root)

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
        return [LogRecord.from_row(row, self._root) for row in rows]

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
        """Create and return the folder where processing writes its outputs."""
        self._require_writable("create an output folder")
        check_log_id(log_id)
        folder = self._root / OUTPUTS_DIR / log_id
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    # -- Transitions ------------------------------------------------------

    def assign_rider(self, log_id: str, rider_id: str) -> LogRecord:
        """Record which rider the log belongs to (from the suit mapping)."""
        self._require_writable("assign a rider")
        with self._lock, self._db.atomic():
            update_log(
                self._db,
                log_id,
                expect_states=[state for state in LogState],
                rider_id=rider_id,
            )
        return self.get(log_id)

    def mark_processed(
        self,
        log_id: str,
        outputs: Mapping[str, Path],
        analytics: Mapping[str, Any],
        crash_detected: bool | None,
    ) -> LogRecord:
        """Record the processing outputs of a pulled log (after fsyncing them).

        Args:
            log_id: the log.
            outputs: output name (for example ``raw_csv``, ``analytics``) to
                file; files should live under :meth:`output_dir`, which
                :meth:`purge` cleans.
            analytics: the ride analytics summary (JSON-serialisable).
            crash_detected: the crash verdict, None when it cannot be judged.

        Raises:
            FileNotFoundError: an output file does not exist.
            InvalidTransitionError: the log is not in ``pulled``.
        """
        self._require_writable("mark a log processed")
        described: dict[str, dict[str, Any]] = {}
        for name, path in outputs.items():
            file = Path(path)
            fsync_file(file)
            fsync_dir(file.parent)
            described[name] = {
                "path": _relative(self._root, file),
                "sha256": sha256_file(file),
                "size_bytes": file.stat().st_size,
            }
        with self._lock, self._db.atomic():
            update_log(
                self._db,
                log_id,
                expect_states=[LogState.PULLED],
                new_state=LogState.PROCESSED,
                outputs_json=json.dumps(described),
                analytics_json=json.dumps(dict(analytics)),
                crash_detected=None if crash_detected is None else int(crash_detected),
            )
        _LOGGER.info(
            "log %s: processed (%d outputs, crash=%s)",
            log_id,
            len(described),
            crash_detected,
        )
        return self.get(log_id)

    def mark_uploaded(self, log_id: str, object_keys: Mapping[str, str]) -> LogRecord:
        """Record that object storage committed the log's outputs.

        Raises:
            InvalidTransitionError: the log is not in ``processed``.
        """
        self._require_writable("mark a log uploaded")
        with self._lock, self._db.atomic():
            update_log(
                self._db,
                log_id,
                expect_states=[LogState.PROCESSED],
                new_state=LogState.UPLOADED,
                object_keys_json=json.dumps(dict(object_keys)),
            )
        _LOGGER.info("log %s: uploaded (%d objects)", log_id, len(object_keys))
        return self.get(log_id)

    def mark_released(self, log_id: str) -> LogRecord:
        """Record that the suit was told it may erase the log.

        Raises:
            InvalidTransitionError: the log is not in ``uploaded``.
        """
        self._require_writable("mark a log released")
        with self._lock, self._db.atomic():
            update_log(
                self._db,
                log_id,
                expect_states=[LogState.UPLOADED],
                new_state=LogState.RELEASED,
            )
        _LOGGER.info("log %s: released, the suit may erase it", log_id)
        return self.get(log_id)

    def purge(self, log_id: str) -> LogRecord:
        """Delete a released log's local bytes per the retention policy.

        The index row stays (state ``purged``). Outputs outside the buffer
        root are not deleted: they do not belong to the buffer. Idempotent
        after a crash: files already gone are skipped.

        Raises:
            InvalidTransitionError: the log is not in ``released``.
        """
        self._require_writable("purge a log")
        with self._lock:
            row = self._row(log_id)
            if row["state"] != LogState.RELEASED.value:
                raise InvalidTransitionError(log_id, row["state"], "purged")
            freed_bytes = 0
            outputs = self._root / OUTPUTS_DIR / log_id
            for meta in json.loads(row["outputs_json"]).values():
                file = self._root / meta["path"]
                if not Path(meta["path"]).is_absolute() and file.exists():
                    freed_bytes += file.stat().st_size
                    file.unlink()
                    fsync_dir(file.parent)
            if outputs.exists():
                shutil.rmtree(outputs)
                fsync_dir(outputs.parent)
            raw_relpath = row["raw_relpath"]
            if raw_relpath and not self._retention.keep_raw_after_upload:
                raw = self._root / raw_relpath
                if raw.exists():
                    freed_bytes += raw.stat().st_size
                    raw.unlink()
                    fsync_dir(raw.parent)
                raw_relpath = None
            with self._db.atomic():
                update_log(
                    self._db,
                    log_id,
                    expect_states=[LogState.RELEASED],
                    new_state=LogState.PURGED,
                    raw_relpath=raw_relpath,
                    outputs_json="{}",
                )
        _LOGGER.info("log %s: purged, %d bytes freed", log_id, freed_bytes)
        return self.get(log_id)

    def purge_released(self) -> list[str]:
        """Purge every released log; return their ids."""
        purged = []
        for record in self.logs([LogState.RELEASED]):
            self.purge(record.log_id)
            purged.append(record.log_id)
        return purged

    # -- Quarantine -------------------------------------------------------

    def quarantine(self, log_id_or_path: str | Path, reason: str) -> QuarantineEntry:
        """Set a log (by id, ``str``) or a file (by ``Path``) aside with a reason.

        A log's raw bytes and outputs move into ``quarantine/<log_id>/`` and
        its state becomes ``quarantined``. A file under the buffer root is
        moved; any other file is copied (the original stays with its owner).

        Raises:
            UnknownLogError: no log with that id.
            InvalidTransitionError: the log already reached object storage.
            FileNotFoundError: the path does not exist.
        """
        self._require_writable("quarantine data")
        with self._lock:
            if isinstance(log_id_or_path, Path):
                entry = quarantine_file(self._db, self._root, log_id_or_path, reason)
            else:
                row = self._row(log_id_or_path)
                entry = quarantine_log(self._db, self._root, row, reason)
            name = entry.name
        return next(item for item in self.quarantine_entries() if item.name == name)

    def reason_file(self, entry: QuarantineEntry) -> Path:
        """Return the path of an entry's reason file."""
        return entry.stored_path / REASON_FILE
