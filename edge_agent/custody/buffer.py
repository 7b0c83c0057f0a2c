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
    logs/<log_id>.bin          raw log bytes pulled from a suit
    logs/<log_id><suffix>      files imported from an archive
    outputs/<log_id>/...       processing outputs (see output_dir())
    quarantine/<name>/         bad data and its reason.json

Appends fsync once per call, so callers should hand over chunks of a few
KiB or more rather than every BLE notification.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
from collections.abc import Iterable, Mapping
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any

from .durable import (
    atomic_copy,
    fsync_dir,
    fsync_file,
    pwrite_durable,
    sha256_file,
    truncate_durable,
)
from .errors import (
    ChecksumMismatchError,
    IncompleteLogError,
    InvalidTransitionError,
    LogConflictError,
    OffsetMismatchError,
    QuarantinedLogError,
    UnknownLogError,
)
from .index import fetch_log_row, open_index, update_log
from .quarantine import (
    QUARANTINABLE_STATES,
    QUARANTINE_DIR,
    REASON_FILE,
    QuarantineMove,
    carry_out,
    commit_entry,
    create_entry,
)
from .record import (
    LogRecord,
    PendingWork,
    QuarantineEntry,
    RetentionPolicy,
    parse_time,
    utc_now_iso,
)
from .recovery import LOGS_DIR, OUTPUTS_DIR, RecoveryReport, recover
from .states import LogState, next_action

__all__ = ["MAX_PULL_ATTEMPTS", "RAW_SUFFIX", "CustodyBuffer"]

_LOGGER = logging.getLogger(__name__)

RAW_SUFFIX = ".bin"
# A log whose pull was quarantined this many times (checksum mismatch each
# time) is refused: the suit's copy itself is probably bad, and looping over
# the BLE link would drain the suit and block its other logs.
MAX_PULL_ATTEMPTS = 3
# Log ids become file names: keep them to a portable, unambiguous alphabet.
_LOG_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_SHA256_RE = re.compile(r"[0-9a-f]{64}")


def _check_log_id(log_id: str) -> None:
    if not _LOG_ID_RE.fullmatch(log_id):
        raise ValueError(
            f"log id {log_id!r}: expected 1-128 characters of A-Z a-z 0-9 . _ - "
            "starting with a letter or digit"
        )


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

    def __init__(self, root: Path, *, retention: RetentionPolicy | None = None) -> None:
        """Open the buffer at ``root``; prefer :meth:`open`."""
        self._root = root.resolve()
        for folder in (LOGS_DIR, OUTPUTS_DIR, QUARANTINE_DIR):
            (self._root / folder).mkdir(parents=True, exist_ok=True)
        fsync_dir(self._root)
        self._retention = retention or RetentionPolicy()
        self._db, self._lock = open_index(self._root)
        with self._lock:
            self.last_recovery: RecoveryReport = recover(self._db, self._root)

    @classmethod
    def open(
        cls, root: Path, *, retention: RetentionPolicy | None = None
    ) -> CustodyBuffer:
        """Open (creating if needed) the buffer in ``root`` and recover it.

        Raises:
            CustodyStorageError: the index cannot be opened or is too new.
        """
        return cls(Path(root), retention=retention)

    def close(self) -> None:
        """Close the index; the buffer must not be used afterwards."""
        with self._lock:
            self._db.close()

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
        _check_log_id(log_id)
        sha256_hex = sha256_hex.lower()
        if size_bytes < 0 or not _SHA256_RE.fullmatch(sha256_hex):
            raise ValueError(
                f"log {log_id!r}: expected size_bytes >= 0 and a 64-digit hex "
                f"SHA-256, got {size_bytes} and {sha256_hex!r}"
            )
        with self._lock:
            row = fetch_log_row(self._db, log_id)
            if row is None:
                return self._register_pull(suit_serial, log_id, size_bytes, sha256_hex)
            if (row["size_bytes"], row["sha256_hex"]) != (size_bytes, sha256_hex):
                raise LogConflictError(
                    f"log {log_id!r} of suit {suit_serial}: already registered with "
                    f"{row['size_bytes']} bytes / SHA-256 {row['sha256_hex']}, now "
                    f"announced as {size_bytes} bytes / {sha256_hex}"
                )
            state = LogState(row["state"])
            if state is LogState.PULLING:
                return int(row["durable_offset"])
            if state is LogState.QUARANTINED:
                return self._restart_pull(row)
            return size_bytes

    def _register_pull(
        self, suit_serial: str, log_id: str, size_bytes: int, sha256_hex: str
    ) -> int:
        raw = self._root / LOGS_DIR / f"{log_id}{RAW_SUFFIX}"
        raw.unlink(missing_ok=True)
        raw.touch()
        fsync_file(raw)
        fsync_dir(raw.parent)
        now = utc_now_iso()
        self._db.table("logs").insert(
            {
                "log_id": log_id,
                "suit_serial": suit_serial,
                "rider_id": None,
                "state": LogState.PULLING.value,
                "source": "ble",
                "size_bytes": size_bytes,
                "sha256_hex": sha256_hex,
                "durable_offset": 0,
                "raw_relpath": str(raw.relative_to(self._root)),
                "original_name": None,
                "outputs_json": "{}",
                "analytics_json": None,
                "crash_detected": None,
                "object_keys_json": "{}",
                "pull_attempts": 1,
                "error": None,
                "quarantine_relpath": None,
                "state_times_json": json.dumps({LogState.PULLING.value: now}),
                "created_at": now,
                "updated_at": now,
            }
        )
        _LOGGER.info(
            "suit %s: log %s registered (%d bytes)", suit_serial, log_id, size_bytes
        )
        return 0

    def _restart_pull(self, row: dict[str, Any]) -> int:
        log_id = row["log_id"]
        if row["source"] != "ble" or row["pull_attempts"] >= MAX_PULL_ATTEMPTS:
            raise QuarantinedLogError(
                f"log {log_id!r} of suit {row['suit_serial']}: quarantined after "
                f"{row['pull_attempts']} pull(s) ({row['error']}); inspect "
                f"{row['quarantine_relpath']} before pulling it again"
            )
        raw = self._root / LOGS_DIR / f"{log_id}{RAW_SUFFIX}"
        raw.unlink(missing_ok=True)
        raw.touch()
        fsync_file(raw)
        fsync_dir(raw.parent)
        with self._db.atomic():
            update_log(
                self._db,
                log_id,
                expect_states=[LogState.QUARANTINED],
                new_state=LogState.PULLING,
                durable_offset=0,
                raw_relpath=str(raw.relative_to(self._root)),
                pull_attempts=row["pull_attempts"] + 1,
            )
        _LOGGER.warning(
            "suit %s: log %s pulled again from 0 (attempt %d/%d)",
            row["suit_serial"],
            log_id,
            row["pull_attempts"] + 1,
            MAX_PULL_ATTEMPTS,
        )
        return 0

    def append_log_bytes(self, log_id: str, offset: int, data: bytes) -> None:
        """Write ``data`` at ``offset`` durably, then record the new offset.

        Raises:
            UnknownLogError: ``begin_log`` was not called for this id.
            InvalidTransitionError: the log is not being pulled.
            OffsetMismatchError: ``offset`` is not the durable end, or the data
                runs past the announced size.
        """
        with self._lock:
            row = self._row(log_id)
            if row["state"] != LogState.PULLING.value:
                raise InvalidTransitionError(log_id, row["state"], "append")
            durable = int(row["durable_offset"])
            end = offset + len(data)
            if offset != durable or end > row["size_bytes"]:
                raise OffsetMismatchError(
                    f"log {log_id!r}: append of {len(data)} bytes at offset "
                    f"{offset}; expected offset {durable} and an end at most "
                    f"{row['size_bytes']}"
                )
            raw = self._root / row["raw_relpath"]
            pwrite_durable(raw, offset, data)
            if raw.stat().st_size > end:
                truncate_durable(raw, end)
            with self._db.atomic():
                update_log(
                    self._db,
                    log_id,
                    expect_states=[LogState.PULLING],
                    durable_offset=end,
                )

    def complete_log(self, log_id: str) -> None:
        """Verify the log's SHA-256 and mark it pulled.

        Raises:
            IncompleteLogError: not every byte is stored yet.
            ChecksumMismatchError: the digest differs; the bytes were
                quarantined and the log may be pulled again.
        """
        with self._lock:
            row = self._row(log_id)
            if row["state"] == LogState.QUARANTINED.value:
                raise InvalidTransitionError(log_id, row["state"], "pulled")
            if row["state"] != LogState.PULLING.value:
                return  # already complete: idempotent
            if row["durable_offset"] != row["size_bytes"]:
                raise IncompleteLogError(
                    f"log {log_id!r}: {row['durable_offset']} of "
                    f"{row['size_bytes']} bytes stored; resume the pull first"
                )
            raw = self._root / row["raw_relpath"]
            found = sha256_file(raw, limit_bytes=row["size_bytes"])
            if found != row["sha256_hex"]:
                reason = (
                    f"SHA-256 mismatch after pull: expected {row['sha256_hex']}, "
                    f"found {found} over {row['size_bytes']} bytes"
                )
                self._quarantine_log(row, reason)
                raise ChecksumMismatchError(log_id, row["sha256_hex"], found)
            with self._db.atomic():
                update_log(
                    self._db,
                    log_id,
                    expect_states=[LogState.PULLING],
                    new_state=LogState.PULLED,
                )
        _LOGGER.info(
            "suit %s: log %s pulled (%d bytes, SHA-256 ok)",
            row["suit_serial"],
            log_id,
            row["size_bytes"],
        )

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
        _check_log_id(log_id)
        source = Path(path)
        suffix = "".join(source.suffixes)[-32:] or RAW_SUFFIX
        target = self._root / LOGS_DIR / f"{log_id}{suffix}"
        with self._lock:
            existing = fetch_log_row(self._db, log_id)
            if existing is not None:
                found = sha256_file(source)
                if found != existing["sha256_hex"]:
                    raise LogConflictError(
                        f"import {source}: log id {log_id!r} is already registered "
                        f"with SHA-256 {existing['sha256_hex']}, file has {found}"
                    )
                return LogRecord.from_row(existing, self._root)
            size_bytes, sha256_hex = atomic_copy(source, target)
            now = utc_now_iso()
            self._db.table("logs").insert(
                {
                    "log_id": log_id,
                    "suit_serial": suit_serial,
                    "rider_id": rider_id,
                    "state": LogState.PULLED.value,
                    "source": "import",
                    "size_bytes": size_bytes,
                    "sha256_hex": sha256_hex,
                    "durable_offset": size_bytes,
                    "raw_relpath": str(target.relative_to(self._root)),
                    "original_name": source.name,
                    "outputs_json": "{}",
                    "analytics_json": None,
                    "crash_detected": None,
                    "object_keys_json": "{}",
                    "pull_attempts": 1,
                    "error": None,
                    "quarantine_relpath": None,
                    "state_times_json": json.dumps({LogState.PULLED.value: now}),
                    "created_at": now,
                    "updated_at": now,
                }
            )
            _LOGGER.info(
                "suit %s: log %s imported from %s (%d bytes)",
                suit_serial,
                log_id,
                source,
                size_bytes,
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
        _check_log_id(log_id)
        folder = self._root / OUTPUTS_DIR / log_id
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    # -- Transitions ------------------------------------------------------

    def assign_rider(self, log_id: str, rider_id: str) -> LogRecord:
        """Record which rider the log belongs to (from the suit mapping)."""
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
        with self._lock:
            if isinstance(log_id_or_path, Path):
                entry = self._quarantine_file(log_id_or_path, reason)
            else:
                row = self._row(log_id_or_path)
                entry = self._quarantine_log(row, reason)
            name = entry.name
        return next(item for item in self.quarantine_entries() if item.name == name)

    def _quarantine_log(self, row: dict[str, Any], reason: str) -> Path:
        log_id = row["log_id"]
        if LogState(row["state"]) not in QUARANTINABLE_STATES:
            raise InvalidTransitionError(log_id, row["state"], "quarantined")
        moves = []
        if row["raw_relpath"]:
            raw = self._root / row["raw_relpath"]
            moves.append(QuarantineMove(raw, raw.name))
        outputs = self._root / OUTPUTS_DIR / log_id
        if outputs.exists():
            moves.append(QuarantineMove(outputs, "outputs"))
        entry = create_entry(
            self._root,
            log_id,
            log_id=log_id,
            original_path=row["raw_relpath"] or "",
            reason=reason,
            moves=moves,
        )
        commit_entry(self._db, self._root, entry, carry_out(entry))
        _LOGGER.error(
            "suit %s: log %s quarantined in %s: %s",
            row["suit_serial"],
            log_id,
            entry.relative_to(self._root),
            reason,
        )
        return entry

    def _quarantine_file(self, path: Path, reason: str) -> Path:
        source = path.resolve()
        if not source.exists():
            raise FileNotFoundError(f"quarantine: {source} does not exist")
        inside = source.is_relative_to(self._root)
        entry = create_entry(
            self._root,
            source.name,
            log_id=None,
            original_path=str(source),
            reason=reason,
            moves=[QuarantineMove(source, source.name, copy=not inside)],
        )
        commit_entry(self._db, self._root, entry, carry_out(entry))
        _LOGGER.error(
            "custody: %s quarantined in %s: %s",
            source,
            entry.relative_to(self._root),
            reason,
        )
        return entry

    def reason_file(self, entry: QuarantineEntry) -> Path:
        """Return the path of an entry's reason file."""
        return entry.stored_path / REASON_FILE
