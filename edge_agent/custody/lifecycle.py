"""The log lifecycle after the pull: processed, uploaded, released, purged.

Also setting logs aside (quarantine). Each change is a compare-and-set on the
log's state in the index, committed after the files it relies on are
durable.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .budget import delete_local_copies
from .core import BufferCore
from .durable import fsync_dir, fsync_file, sha256_file
from .errors import InvalidTransitionError
from .index import update_log
from .paths import REASON_FILE
from .quarantine import quarantine_file, quarantine_log
from .record import LogRecord, QuarantineEntry
from .states import LogState

__all__ = ["LogLifecycle"]

_LOGGER = logging.getLogger(__name__)


def _relative(root: Path, path: Path) -> str:
    """Store paths under the root relative to it, others absolute."""
    resolved = path.resolve()
    try:
        return str(resolved.relative_to(root))
    except ValueError:
        return str(resolved)


class LogLifecycle(BufferCore):
    """Move logs through the states after the pull, and quarantine them."""

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
        state = self._row_state(log_id)
        if state is not LogState.PULLED:
            raise InvalidTransitionError(log_id, state.value, "processed")
        described = {
            name: self._store_output(log_id, Path(path))
            for name, path in outputs.items()
        }
        with self._lock, self._db.atomic():
            update_log(
                self._db,
                log_id,
                expect_states=[LogState.PULLED],
                new_state=LogState.PROCESSED,
                outputs_json=json.dumps(described),
                analytics_json=self._files.encode_analytics(log_id, analytics),
                crash_detected=None if crash_detected is None else int(crash_detected),
            )
        _LOGGER.info(
            "log %s: processed (%d outputs, crash=%s)",
            log_id,
            len(described),
            crash_detected,
        )
        return self.get(log_id)

    def _row_state(self, log_id: str) -> LogState:
        with self._lock:
            return LogState(self._row(log_id)["state"])

    def _store_output(self, log_id: str, file: Path) -> dict[str, Any]:
        """Make an output durable (encrypted into output_dir when encrypting)."""
        if not self._files.encrypting:
            fsync_file(file)
            fsync_dir(file.parent)
            return {
                "path": _relative(self._root, file),
                "sha256": sha256_file(file),
                "size_bytes": file.stat().st_size,
            }
        target = self.output_dir(log_id) / file.name
        size_bytes, sha256_hex = self._files.store(file, target)
        return {
            "path": _relative(self._root, target),
            "sha256": sha256_hex,
            "size_bytes": size_bytes,
        }

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
            freed_bytes, raw_relpath = delete_local_copies(
                self._root, row, keep_raw=self._retention.keep_raw_after_upload
            )
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
