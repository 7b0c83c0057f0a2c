"""Open a buffer for writing: check the index, rebuild it if needed, recover.

The order matters: a damaged index is set aside before anything reads it
(:mod:`.integrity`); an empty or fresh index beside log files is rebuilt
from them (:mod:`.rebuild`); then the usual recovery trims the disk to the
index (:mod:`.recovery`). An SQLite error while recovering means damage the
checker missed: the index is set aside and rebuilt once more, after which
an error is raised rather than looping.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import sqlite_utils

from .errors import CustodyStorageError
from .files import DataFiles
from .index import INDEX_FILE_NAME, open_index
from .integrity import check_index_file, move_index_aside
from .rebuild import index_needs_rebuild, rebuild_index
from .recovery import RecoveryReport, recover

__all__ = ["open_and_recover"]

# One retry after damage found while recovering; a second failure is not
# damage a rebuild can fix.
_OPEN_ATTEMPTS = 2


def _set_aside(path: Path, problem: str, report: RecoveryReport) -> None:
    report.index_problem = problem
    report.index_moved_to = str(move_index_aside(path, problem))


def open_and_recover(
    root: Path, files: DataFiles, report: RecoveryReport
) -> tuple[sqlite_utils.Database, threading.RLock]:
    """Open the index under ``root`` for writing and bring the buffer in order.

    The caller holds the buffer's process lock. Findings go into ``report``.

    Raises:
        CustodyStorageError: the index cannot be created, has a newer
            schema, or stays unusable after a rebuild.
        WrongKeyError: the rebuild met a file encrypted under another key.
    """
    path = root / INDEX_FILE_NAME
    for attempt in range(1, _OPEN_ATTEMPTS + 1):
        problem = check_index_file(path)
        if problem is not None:
            _set_aside(path, problem, report)
        db, lock = open_index(root)
        try:
            with lock:
                if report.index_moved_to is not None or index_needs_rebuild(db, root):
                    result = rebuild_index(db, root, files)
                    report.rebuilt_logs.update(result.logs)
                    report.rebuilt_quarantine_entries += result.quarantine_entries
                    report.unreadable_quarantined += result.quarantined_files
                recover(db, root, files, report)
        except sqlite3.DatabaseError as exc:
            db.close()
            if attempt == _OPEN_ATTEMPTS:
                raise CustodyStorageError(
                    f"custody index {path}: still failing after a rebuild ({exc}); "
                    "check the storage device"
                ) from exc
            _set_aside(path, f"query failed while recovering: {exc}", report)
            continue
        except BaseException:
            db.close()
            raise
        return db, lock
    raise AssertionError("unreachable")  # the loop returns or raises
