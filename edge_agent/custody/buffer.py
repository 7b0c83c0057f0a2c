"""The custody buffer: log bytes on disk, their states in a SQLite index.

A log is the gateway's responsibility from the first byte pulled from the
suit until object storage has committed it and the suit was told it may
erase it. The buffer keeps that custody crash-safe:

* every byte range is written and fsynced before the index records it as
  durable, and a file is fsynced (its directory too after a create or rename)
  before any state change that relies on it is committed;
* on open, the index is checked and, if damaged, set aside and rebuilt from
  the files (:mod:`.integrity`, :mod:`.rebuild`); then
  :func:`~edge_agent.custody.recovery.recover` trims the disk to what the
  index says, so a restart in any state resumes from that state;
* bad data is never deleted, it is quarantined with a reason;
* with ``budget_bytes`` set, a new log is admitted only if it fits, after
  evicting local copies object storage already holds (:mod:`.budget`);
* with ``key_file`` set, log bytes and outputs are encrypted on disk
  (:mod:`.crypto`); processing and upload get plaintext working copies
  through :meth:`CustodyBuffer.readable_raw`,
  :meth:`CustodyBuffer.processing_dir` and
  :meth:`CustodyBuffer.readable_outputs`, which work the same (without
  copies) when encryption is off.

Layout under the root directory::

    custody.db                 the index (WAL)
    custody.lock               held (flock) by the process that owns the buffer
    logs/<log_id>.bin          raw log bytes pulled from a suit
    logs/<log_id><suffix>      files imported from an archive
    outputs/<log_id>/...       processing outputs (see output_dir())
    quarantine/<name>/         bad data and its reason.json
    work/                      plaintext working copies, one step at a time
                               (encryption on; the folder can live elsewhere)

Appends fsync once per call, so callers should hand over chunks of a few
KiB or more rather than every BLE notification.
"""

from __future__ import annotations

import fcntl
import logging
import os
from pathlib import Path
from types import TracebackType

from .access import PlaintextAccess
from .budget import DiskBudget, SpaceStatus
from .crypto import CustodyCipher
from .durable import fsync_dir
from .errors import CustodyBusyError
from .files import DataFiles
from .index import fetch_log_row, open_index
from .intake import (
    MAX_PULL_ATTEMPTS,
    append_bytes,
    begin_pull,
    check_announcement,
    complete_pull,
    import_file,
)
from .lifecycle import LogLifecycle
from .opening import open_and_recover
from .paths import LOCK_FILE_NAME, LOGS_DIR, OUTPUTS_DIR, QUARANTINE_DIR, WORK_DIR
from .record import LogRecord, RetentionPolicy
from .recovery import RecoveryReport
from .states import LogState
from .workspace import Workspace

__all__ = ["MAX_PULL_ATTEMPTS", "CustodyBuffer"]

_LOGGER = logging.getLogger(__name__)


class CustodyBuffer(LogLifecycle, PlaintextAccess):
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
        budget_bytes: int | None = None,
        cipher: CustodyCipher | None = None,
        work_dir: Path | None = None,
    ) -> None:
        """Open the buffer at ``root``; prefer :meth:`open`."""
        self._root = root.resolve()
        self._retention = retention or RetentionPolicy()
        self._read_only = read_only
        self._lock_fd: int | None = None
        self._files = DataFiles(cipher)
        # A configured folder (/run/edge-agent, say) is shared: the buffer
        # keeps to a private subfolder of it, which it may empty at start-up.
        self._workspace = Workspace(
            self._root / WORK_DIR if work_dir is None else Path(work_dir) / WORK_DIR
        )
        self._budget = DiskBudget(
            self._root, budget_bytes, skip=self._workspace.root.resolve()
        )
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
            report = RecoveryReport()
            report.work_files_removed = self._workspace.prepare()
            self._db, self._lock = open_and_recover(self._root, self._files, report)
            self.last_recovery = report
        except BaseException:
            os.close(self._lock_fd)
            raise
        if self._files.encrypting and not self._workspace.on_ram():
            _LOGGER.warning(
                "custody %s: plaintext working copies go to %s, which is not on "
                "tmpfs: deleted plaintext may stay readable on flash; set "
                "[custody] work_dir to a folder under /run",
                self._root,
                self._workspace.root,
            )

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
        budget_bytes: int | None = None,
        key_file: Path | None = None,
        work_dir: Path | None = None,
    ) -> CustodyBuffer:
        """Open (creating if needed) the buffer in ``root`` and recover it.

        Only one process may open a buffer for writing at a time. A read-only
        buffer (for ``status``) needs no lock, runs no recovery, and refuses
        every change.

        Args:
            root: the buffer's folder.
            retention: what :meth:`purge` deletes.
            read_only: open for reading only (no lock, no recovery).
            budget_bytes: disk budget of the buffer; None for no limit.
            key_file: encrypt log bytes and outputs with the key in this file
                (mode 0600 or stricter); None keeps new files plaintext.
            work_dir: folder for plaintext working copies, which go into its
                private ``work/`` subfolder (default: ``root/work``); put it
                on tmpfs when encrypting.

        Raises:
            CustodyBusyError: another process holds the buffer.
            CustodyStorageError: the index cannot be opened or is too new.
            KeyFileError: the key file is missing, too open or malformed.
            WrongKeyError: rebuilding the index met a file encrypted under
                another key.
        """
        cipher = None if key_file is None else CustodyCipher.from_key_file(key_file)
        return cls(
            Path(root),
            retention=retention,
            read_only=read_only,
            budget_bytes=budget_bytes,
            cipher=cipher,
            work_dir=work_dir,
        )

    def close(self) -> None:
        """Close the index and release the buffer; do not use it afterwards."""
        with self._lock:
            self._db.close()
            if self._lock_fd is not None:
                os.close(self._lock_fd)
                self._lock_fd = None

    def __enter__(self) -> CustodyBuffer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- LogSink -----------------------------------------------------------

    def begin_log(
        self, suit_serial: str, log_id: str, size_bytes: int, sha256_hex: str
    ) -> int:
        """Register a log to pull (idempotent) and return its resume offset.

        A log already complete returns ``size_bytes``: nothing left to pull.
        A log quarantined after a failed pull starts again at 0, up to
        ``MAX_PULL_ATTEMPTS`` pulls. A new log (or a new attempt) must fit
        the disk budget; local copies of uploaded logs are evicted to make
        room (see :mod:`.budget`).

        Raises:
            ValueError: malformed log id, size or digest.
            LogConflictError: the id is known with another size or digest.
            QuarantinedLogError: the log failed too many pulls.
            BufferFullError: the log does not fit the disk budget; the suit
                keeps it, a later dock pulls it.
        """
        self._require_writable("begin a log")
        check_announcement(log_id, size_bytes, sha256_hex)
        with self._lock:
            row = fetch_log_row(self._db, log_id)
            if row is None or (
                row["state"] == LogState.QUARANTINED.value
                and row["source"] == "ble"
                and row["pull_attempts"] < MAX_PULL_ATTEMPTS
            ):
                self._budget.admit(self._db, log_id, size_bytes)
            return begin_pull(
                self._db,
                self._root,
                self._files,
                suit_serial,
                log_id,
                size_bytes,
                sha256_hex,
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
            append_bytes(self._db, self._root, self._files, log_id, offset, data)

    def complete_log(self, log_id: str) -> None:
        """Verify the log's SHA-256 and mark it pulled (idempotent).

        Raises:
            IncompleteLogError: not every byte is stored yet.
            ChecksumMismatchError: the digest differs; the bytes were
                quarantined and the log may be pulled again.
            EncryptedDataError: stored bytes fail authentication (quarantined
                likewise), or (WrongKeyError) the key changed mid-pull.
        """
        self._require_writable("complete a log")
        with self._lock:
            complete_pull(self._db, self._root, self._files, log_id)

    # -- Disk budget ------------------------------------------------------

    def can_accept(self, size_bytes: int, log_id: str = "new") -> tuple[bool, str]:
        """Tell whether a new log of ``size_bytes`` fits the budget, and why.

        Counts what eviction could free; evicts nothing. The agent may ask
        before pulling; :meth:`begin_log` applies the same rule.
        """
        with self._lock:
            fits, reason, _space = self._budget.check(self._db, log_id, size_bytes)
        return fits, reason

    def space_status(self) -> SpaceStatus:
        """Return disk use against the budget and why intake is refused, if it is."""
        with self._lock:
            return self._budget.status(self._db)

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
        path = Path(path)
        with self._lock:
            if fetch_log_row(self._db, log_id) is None:
                self._budget.admit(self._db, log_id, path.stat().st_size)
        import_file(
            self._db,
            self._root,
            self._files,
            self._lock,
            path,
            suit_serial,
            log_id,
            rider_id,
        )
        return self.get(log_id)
