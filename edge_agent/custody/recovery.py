"""Bring the buffer back to a consistent state when it is opened.

After a crash the disk may hold more than the index says (bytes written but
not yet recorded, outputs of an unfinished processing run, temporary files,
an interrupted quarantine). The index is the truth for states; the disk is
trimmed to match it, never the other way round, and nothing that might be
the only copy of a log is deleted: it is quarantined instead.

Where the disk holds *less* than the index says, the index follows: a raw
file shorter than its durable offset resumes the pull where it ends, a
missing raw file of a complete log is quarantined (the suit still holds the
log), and a processed log whose outputs are gone is processed again (its
state goes back from ``processed`` to ``pulled``, the one backward step,
taken only here). Output folders of logs the index does not know are
quarantined. A damaged or lost index is handled before this runs
(:mod:`.integrity`, :mod:`.rebuild`); their findings join this report.
"""

from __future__ import annotations

import json
import logging
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import sqlite_utils

from .durable import fsync_dir, is_temp_file
from .errors import EncryptedDataError
from .files import DataFiles
from .index import fetch_log_row, update_log
from .paths import KEEP_ON_OUTPUT_RESET, LOGS_DIR, OUTPUTS_DIR
from .quarantine import (
    QuarantineMove,
    carry_out,
    commit_entry,
    create_entry,
    quarantine_log,
)
from .quarantine import finish_pending as finish_pending_quarantines
from .states import LogState

__all__ = ["RecoveryReport", "recover"]

_LOGGER = logging.getLogger(__name__)


@dataclass
class RecoveryReport:
    """What start-up recovery changed on disk, for logs and tests."""

    truncated_bytes: dict[str, int] = field(default_factory=dict)
    restarted_pulls: list[str] = field(default_factory=list)
    stale_outputs_removed: list[str] = field(default_factory=list)
    missing_raw_quarantined: list[str] = field(default_factory=list)
    orphans_quarantined: list[str] = field(default_factory=list)
    orphans_removed: list[str] = field(default_factory=list)
    temp_files_removed: int = 0
    quarantines_finished: int = 0
    reprocess: list[str] = field(default_factory=list)
    orphan_outputs_quarantined: list[str] = field(default_factory=list)
    work_files_removed: int = 0
    index_problem: str | None = None
    index_moved_to: str | None = None
    rebuilt_logs: dict[str, str] = field(default_factory=dict)
    rebuilt_quarantine_entries: int = 0
    unreadable_quarantined: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        """Tell whether recovery had anything to repair."""
        return any(
            (
                self.truncated_bytes,
                self.restarted_pulls,
                self.stale_outputs_removed,
                self.missing_raw_quarantined,
                self.orphans_quarantined,
                self.orphans_removed,
                self.temp_files_removed,
                self.quarantines_finished,
                self.reprocess,
                self.orphan_outputs_quarantined,
                self.work_files_removed,
                self.index_moved_to,
                self.rebuilt_logs,
                self.rebuilt_quarantine_entries,
                self.unreadable_quarantined,
            )
        )

    @property
    def rebuilt(self) -> bool:
        """Tell whether the index was rebuilt from the files on disk."""
        return bool(self.index_moved_to or self.rebuilt_logs)


def _remove_temp_files(root: Path) -> int:
    removed = 0
    for folder in (root / LOGS_DIR, root / OUTPUTS_DIR):
        for path in list(folder.rglob(".*")):
            if path.is_file() and is_temp_file(path):
                path.unlink()
                fsync_dir(path.parent)
                removed += 1
    return removed


def _recover_pulling(
    db: sqlite_utils.Database,
    root: Path,
    files: DataFiles,
    row: dict[str, object],
    report: RecoveryReport,
) -> None:
    log_id = str(row["log_id"])
    raw = root / str(row["raw_relpath"])
    durable = int(str(row["durable_offset"]))
    if not raw.exists():
        files.create_raw(raw)
        update_log(db, log_id, expect_states=[LogState.PULLING], durable_offset=0)
        report.restarted_pulls.append(log_id)
        _LOGGER.warning("log %s: raw file was missing, pull restarts at 0", log_id)
        return
    try:
        size_bytes, kept_bytes = files.trim(raw, durable)
    except EncryptedDataError as exc:
        reason = f"raw file unreadable at start-up ({exc}); pull it again"
        quarantine_log(db, root, {**row}, reason)
        report.unreadable_quarantined.append(str(row["raw_relpath"]))
        return
    if kept_bytes < durable:
        size_bytes = kept_bytes
    if size_bytes > durable:
        report.truncated_bytes[log_id] = size_bytes - durable
        _LOGGER.warning(
            "log %s: dropped %d bytes past the durable offset %d",
            log_id,
            size_bytes - durable,
            durable,
        )
    elif size_bytes < durable:
        # The file lost fsynced bytes (storage fault); resume where it ends.
        update_log(
            db, log_id, expect_states=[LogState.PULLING], durable_offset=size_bytes
        )
        report.truncated_bytes[log_id] = size_bytes - durable
        _LOGGER.error(
            "log %s: raw file holds %d bytes but %d were recorded durable; "
            "resuming the pull at %d",
            log_id,
            size_bytes,
            durable,
            size_bytes,
        )


def _quarantine_missing_raw(
    db: sqlite_utils.Database, root: Path, log_id: str, report: RecoveryReport
) -> None:
    row = fetch_log_row(db, log_id)
    assert row is not None
    reason = "raw log bytes missing at start-up; pull the log from the suit again"
    quarantine_log(db, root, {**row, "raw_relpath": None}, reason)
    report.missing_raw_quarantined.append(log_id)


def _reset_outputs(folder: Path) -> bool:
    """Remove a folder's outputs, keeping processing inputs; True if any."""
    removed = False
    for path in sorted(folder.iterdir()):
        if path.name in KEEP_ON_OUTPUT_RESET:
            continue
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink()
        removed = True
    if not any(folder.iterdir()):
        folder.rmdir()
    fsync_dir(folder.parent)
    return removed


def _reprocess_if_outputs_lost(
    db: sqlite_utils.Database,
    root: Path,
    row: dict[str, object],
    report: RecoveryReport,
) -> None:
    outputs: dict[str, dict[str, str]] = json.loads(str(row["outputs_json"]))
    lost = sorted(
        name
        for name, meta in outputs.items()
        if not Path(meta["path"]).is_absolute() and not (root / meta["path"]).exists()
    )
    if not lost:
        return
    log_id = str(row["log_id"])
    update_log(
        db,
        log_id,
        expect_states=[LogState.PROCESSED],
        new_state=LogState.PULLED,
        outputs_json="{}",
        analytics_json=None,
        crash_detected=None,
    )
    report.reprocess.append(log_id)
    _LOGGER.error("log %s: outputs %s missing, processing it again", log_id, lost)


def _quarantine_orphan_outputs(
    db: sqlite_utils.Database, root: Path, report: RecoveryReport
) -> None:
    known = {row["log_id"] for row in db.table("logs").rows_where(select="log_id")}
    for folder in sorted((root / OUTPUTS_DIR).iterdir()):
        if not folder.is_dir() or folder.name in known:
            continue
        relpath = str(folder.relative_to(root))
        entry = create_entry(
            root,
            f"orphan-outputs-{folder.name}",
            log_id=None,
            original_path=relpath,
            reason="output folder of a log the index does not know",
            moves=[QuarantineMove(folder, "outputs")],
        )
        commit_entry(db, root, entry, carry_out(entry))
        report.orphan_outputs_quarantined.append(relpath)
        _LOGGER.warning("custody: %s had no index row, quarantined", relpath)


def _handle_orphans(
    db: sqlite_utils.Database, root: Path, known: set[str], report: RecoveryReport
) -> None:
    for path in sorted((root / LOGS_DIR).iterdir()):
        relpath = str(path.relative_to(root))
        if relpath in known or not path.is_file():
            continue
        if path.stat().st_size == 0:
            # A registration that crashed before its index row: nothing to keep.
            path.unlink()
            fsync_dir(path.parent)
            report.orphans_removed.append(relpath)
            continue
        entry = create_entry(
            root,
            f"orphan-{path.name}",
            log_id=None,
            original_path=relpath,
            reason="file in logs/ without an index row (registration interrupted)",
            moves=[QuarantineMove(path, path.name)],
        )
        commit_entry(db, root, entry, carry_out(entry))
        report.orphans_quarantined.append(relpath)
        _LOGGER.warning("custody: %s had no index row, quarantined", relpath)


def recover(
    db: sqlite_utils.Database,
    root: Path,
    files: DataFiles | None = None,
    report: RecoveryReport | None = None,
) -> RecoveryReport:
    """Repair the disk to match the index; the caller holds the buffer lock."""
    files = files or DataFiles(None)
    report = report or RecoveryReport()
    report.temp_files_removed = _remove_temp_files(root)
    report.quarantines_finished = finish_pending_quarantines(db, root)

    # Raw files: trim pulls to their durable offset, check complete logs.
    logs = db.table("logs")
    for row in list(logs.rows_where("state = ?", [LogState.PULLING.value])):
        _recover_pulling(db, root, files, row, report)
    waiting = [LogState.PULLED.value, LogState.PROCESSED.value]
    for row in list(logs.rows_where("state IN (?, ?)", waiting)):
        if not (root / str(row["raw_relpath"])).exists():
            _quarantine_missing_raw(db, root, row["log_id"], report)
    for row in list(logs.rows_where("state = ?", [LogState.PROCESSED.value])):
        _reprocess_if_outputs_lost(db, root, row, report)

    # Outputs of a processing run that never committed are incomplete.
    for row in list(logs.rows_where("state = ?", [LogState.PULLED.value])):
        stale = root / OUTPUTS_DIR / row["log_id"]
        if stale.exists() and _reset_outputs(stale):
            report.stale_outputs_removed.append(row["log_id"])
    _quarantine_orphan_outputs(db, root, report)

    # Files nobody indexed.
    known = {
        str(row["raw_relpath"])
        for row in logs.rows_where("raw_relpath IS NOT NULL", select="raw_relpath")
    }
    _handle_orphans(db, root, known, report)

    if report.changed:
        _LOGGER.info("custody %s: recovery %s", root, json.dumps(report.__dict__))
    return report
