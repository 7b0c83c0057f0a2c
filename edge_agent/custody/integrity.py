"""Check the custody index when the buffer opens; set a damaged one aside.

A gateway runs unattended on flash that can lose power at any moment, so a
damaged index must not stop the agent (systemd would restart it into the same
failure forever). On a writable open the index is checked with SQLite's own
checker; a file that fails, or that SQLite cannot read at all, is renamed to
``custody.db.corrupt-<UTC time>`` (with its ``-wal`` and ``-shm`` files),
kept for inspection, and a fresh index is rebuilt from the files on disk by
:mod:`~edge_agent.custody.rebuild`. Nothing is deleted.
"""

from __future__ import annotations

import logging
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

from .durable import fsync_dir

__all__ = ["QUICK_CHECK_ABOVE_BYTES", "check_index_file", "move_index_aside"]

_LOGGER = logging.getLogger(__name__)

# ``integrity_check`` also cross-checks every index against its table, which
# grows with the square of a large database's size; ``quick_check`` skips
# that. 64 MiB is far above a gateway's index (about 2 KiB per log), so in
# practice the full check runs, and a huge index still opens in seconds.
QUICK_CHECK_ABOVE_BYTES = 64 * 1024 * 1024
# How many problem lines of the checker go into the report and log line.
_MAX_PROBLEMS_SHOWN = 5
# Seconds to wait for a lock while checking: the buffer's process lock is
# already held, so only a stray reader could hold the file.
_CHECK_TIMEOUT_S = 10.0
_SIDE_FILES = ("-wal", "-shm", "-journal")


def check_index_file(path: Path) -> str | None:
    """Return None when the index at ``path`` is sound (or absent), else why not."""
    if not path.exists():
        return None
    pragma = (
        "quick_check"
        if path.stat().st_size > QUICK_CHECK_ABOVE_BYTES
        else "integrity_check"
    )
    conn = None
    try:
        conn = sqlite3.connect(str(path), timeout=_CHECK_TIMEOUT_S)
        rows = conn.execute(f"PRAGMA {pragma}").fetchall()
    except sqlite3.DatabaseError as exc:
        return f"SQLite cannot read it: {exc}"
    finally:
        if conn is not None:
            conn.close()
    problems = [str(row[0]) for row in rows if row and row[0] != "ok"]
    if not problems:
        return None
    shown = "; ".join(problems[:_MAX_PROBLEMS_SHOWN])
    more = len(problems) - _MAX_PROBLEMS_SHOWN
    return f"PRAGMA {pragma} found {len(problems)} problem(s): {shown}" + (
        f" (+{more} more)" if more > 0 else ""
    )


def move_index_aside(path: Path, problem: str) -> Path:
    """Rename a damaged index (and its WAL files) out of the way; return where."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    target = path.with_name(f"{path.name}.corrupt-{stamp}")
    number = 1
    while target.exists():
        number += 1
        target = path.with_name(f"{path.name}.corrupt-{stamp}.{number}")
    path.replace(target)
    for suffix in _SIDE_FILES:
        side = path.with_name(path.name + suffix)
        if side.exists():
            side.replace(target.with_name(target.name + suffix))
    fsync_dir(path.parent)
    _LOGGER.error(
        "custody index %s is damaged (%s); moved to %s, rebuilding the index "
        "from the files on disk",
        path,
        problem,
        target,
    )
    return target
