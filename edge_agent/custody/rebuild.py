"""Rebuild a lost or damaged custody index from the files on disk.

Runs when the index was set aside as damaged (:mod:`.integrity`), or when an
empty index sits beside log files (the index was deleted or replaced). What
the files can tell, they tell:

* ``logs/<log_id>.bin`` is a pull from a suit, any other suffix an import;
  the file name gives the log id, a suit log's header the suit serial;
* size and SHA-256 are recomputed from the plaintext;
* an encrypted file with its end record is complete (it was sealed only
  after its SHA-256 matched the suit's); a plaintext suit log is complete
  when it decodes to the end without being cut inside a block. A complete
  log becomes ``pulled``, anything else ``pulling`` with the durable offset
  at the bytes it holds; the suit's next announcement then fixes its size
  and digest (see ``intake._adopt_announcement``);
* a complete log whose processing outputs are complete (CSV and analytics
  JSON for this log id, authenticated when encrypted) becomes ``processed``
  with them; otherwise it is processed again;
* quarantine entries get their index rows back from their reason files.

Rows made here carry ``rebuilt_at``. Logs that had been uploaded come back
as ``processed``: uploads are idempotent (same key, same SHA-256 is
skipped), so the cost is a HEAD request per object. A file that cannot be
read is quarantined with the reason, never deleted. The whole rebuild is one
transaction; if it stops (a wrong key), the next open starts it again.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlite_utils

from firmware_bridge.logformat import LogFormatError, LogReader, TruncatedLogError
from firmware_bridge.logformat.records import FILE_MAGIC

from .crypto import scan_records
from .durable import is_temp_file
from .errors import EncryptedDataError, WrongKeyError
from .files import DataFiles
from .intake import check_log_id
from .paths import (
    ANALYTICS_OUTPUT,
    LOGS_DIR,
    OUTPUTS_DIR,
    QUARANTINE_DIR,
    RAW_CSV_OUTPUT,
    RAW_SUFFIX,
    REASON_FILE,
)
from .quarantine import (
    QuarantineMove,
    carry_out,
    commit_entry,
    create_entry,
    insert_entry_row,
)
from .record import utc_now_iso
from .states import LogState

__all__ = ["RebuildResult", "index_needs_rebuild", "rebuild_index"]

_LOGGER = logging.getLogger(__name__)

UNKNOWN_SUIT = "unknown"
# Logs named one by one in the rebuild's log line; the report has them all.
_MAX_LOGS_NAMED = 20


@dataclass
class RebuildResult:
    """What a rebuild recreated."""

    logs: dict[str, str]
    quarantine_entries: int
    quarantined_files: list[str]


def index_needs_rebuild(db: sqlite_utils.Database, root: Path) -> bool:
    """Tell whether the index is empty while ``logs/`` holds data files."""
    if db.table("logs").count > 0:
        return False
    logs = root / LOGS_DIR
    return logs.is_dir() and any(
        path.is_file() and not is_temp_file(path) for path in logs.iterdir()
    )


def _log_id_and_source(path: Path) -> tuple[str, str]:
    name = path.name
    if name.endswith(RAW_SUFFIX):
        log_id, source = name[: -len(RAW_SUFFIX)], "ble"
    else:
        log_id, source = name.split(".", 1)[0], "import"
    check_log_id(log_id)
    return log_id, source


def _inspect_suit_log(
    path: Path, files: DataFiles, *, sealed: bool, to_end: bool
) -> tuple[str | None, bool]:
    """Return a suit log's serial (None: not a suit log) and whether it
    decodes to its end without being cut inside a block (with ``to_end``)."""
    with files.open(path, sealed=sealed) as stream:
        if stream.read(len(FILE_MAGIC)) != FILE_MAGIC:
            return None, False
    serial = None
    try:
        with files.open(path, sealed=sealed) as stream:
            reader = LogReader(stream, source=str(path))
            serial = reader.header.suit_serial
            if to_end:
                for _block in reader.blocks():
                    pass
    except TruncatedLogError:
        return serial, False
    except LogFormatError:
        # Damaged but not cut short: processing rejects it with the place.
        return serial or UNKNOWN_SUIT, True
    return serial, True


def _outputs(
    root: Path, files: DataFiles, log_id: str
) -> tuple[dict[str, dict[str, Any]], dict[str, Any]] | None:
    """Return the recorded form of a log's complete outputs, or None."""
    folder = root / OUTPUTS_DIR / log_id
    paths = {
        RAW_CSV_OUTPUT: folder / f"{log_id}.csv.gz",
        ANALYTICS_OUTPUT: folder / f"{log_id}.json",
    }
    if not all(path.is_file() for path in paths.values()):
        return None
    try:
        with files.open(paths[ANALYTICS_OUTPUT]) as stream:
            analytics = json.load(stream)
        if not isinstance(analytics, dict) or analytics.get("log_id") != log_id:
            return None
        described = {}
        for name, path in paths.items():
            size_bytes, sha256_hex = files.digest(path)
            described[name] = {
                "path": str(path.relative_to(root)),
                "sha256": sha256_hex,
                "size_bytes": size_bytes,
            }
    except (EncryptedDataError, OSError, ValueError) as exc:
        if isinstance(exc, WrongKeyError):
            raise
        _LOGGER.warning("log %s: outputs unusable (%s), processing again", log_id, exc)
        return None
    return described, analytics


def _row_for(root: Path, files: DataFiles, path: Path) -> dict[str, Any]:
    log_id, source = _log_id_and_source(path)
    encrypted = files.is_encrypted(path)
    complete = True
    if encrypted:
        extent = scan_records(path)
        complete = extent.sealed
        if not complete:
            files.trim(path, extent.plain_bytes)  # drop a torn last record
    plain_pull = source == "ble" and not encrypted
    serial, decodes = _inspect_suit_log(path, files, sealed=complete, to_end=plain_pull)
    if plain_pull:
        complete = decodes
    if not complete and source == "import":
        raise EncryptedDataError(f"{path}: imported file without its end record")
    size_bytes, sha256_hex = files.digest(path, sealed=complete)

    state = LogState.PULLED if complete else LogState.PULLING
    outputs = _outputs(root, files, log_id) if complete else None
    analytics: dict[str, Any] = {}
    if outputs is not None:
        state, analytics = LogState.PROCESSED, outputs[1]
    crash = (analytics.get("crash") or {}).get("detected")
    now = utc_now_iso()
    created = datetime.fromtimestamp(path.stat().st_mtime, UTC)
    return {
        "log_id": log_id,
        "suit_serial": serial or str(analytics.get("suit_id") or UNKNOWN_SUIT),
        "rider_id": analytics.get("rider_id") or None,
        "state": state.value,
        "source": source,
        "size_bytes": size_bytes,
        "sha256_hex": sha256_hex,
        "durable_offset": size_bytes,
        "raw_relpath": str(path.relative_to(root)),
        "original_name": None if source == "ble" else path.name,
        "outputs_json": json.dumps({} if outputs is None else outputs[0]),
        "analytics_json": (
            None if outputs is None else files.encode_analytics(log_id, analytics)
        ),
        "crash_detected": None if crash is None else int(bool(crash)),
        "object_keys_json": "{}",
        "pull_attempts": 1,
        "error": None,
        "quarantine_relpath": None,
        "state_times_json": json.dumps({state.value: now}),
        "created_at": created.isoformat(timespec="milliseconds"),
        "updated_at": now,
        "rebuilt_at": now,
    }


def _rebuild_quarantine(db: sqlite_utils.Database, root: Path) -> int:
    known = {row["name"] for row in db.table("quarantine").rows}
    count = 0
    for entry in sorted((root / QUARANTINE_DIR).iterdir()):
        if not entry.is_dir() or entry.name in known:
            continue
        if not (entry / REASON_FILE).exists():
            continue  # an intent never written; recovery removes it
        insert_entry_row(db, root, entry, carry_out(entry))
        count += 1
    return count


def _set_aside(db: sqlite_utils.Database, root: Path, path: Path, why: str) -> str:
    relpath = str(path.relative_to(root))
    entry = create_entry(
        root,
        f"unreadable-{path.name}",
        log_id=None,
        original_path=relpath,
        reason=f"index rebuild: {why}",
        moves=[QuarantineMove(path, path.name)],
    )
    commit_entry(db, root, entry, carry_out(entry))
    _LOGGER.error("custody: %s unreadable while rebuilding, quarantined: %s", path, why)
    return relpath


def rebuild_index(
    db: sqlite_utils.Database, root: Path, files: DataFiles
) -> RebuildResult:
    """Recreate index rows from the buffer's files; the caller holds the lock.

    Raises:
        WrongKeyError: a file is encrypted under another key than the
            configured one (nothing is committed; fix the key and reopen).
    """
    result = RebuildResult(logs={}, quarantine_entries=0, quarantined_files=[])
    with db.atomic():
        result.quarantine_entries = _rebuild_quarantine(db, root)
        for path in sorted((root / LOGS_DIR).iterdir()):
            if not path.is_file() or is_temp_file(path):
                continue
            try:
                row = _row_for(root, files, path)
                if row["log_id"] in result.logs:
                    raise ValueError(f"log id {row['log_id']!r} has two files")
            except WrongKeyError:
                raise
            except Exception as exc:
                # Whatever one file does (damaged data, a decoder's surprise),
                # it is set aside: failing here would fail every start-up.
                why = f"{type(exc).__name__}: {exc}"
                result.quarantined_files.append(_set_aside(db, root, path, why))
                continue
            db.table("logs").insert(row)
            result.logs[row["log_id"]] = row["state"]
    shown = [f"{log_id}={state}" for log_id, state in result.logs.items()]
    if len(shown) > _MAX_LOGS_NAMED:
        shown[_MAX_LOGS_NAMED:] = [f"{len(shown) - _MAX_LOGS_NAMED} more"]
    _LOGGER.warning(
        "custody %s: index rebuilt from disk: %d logs (%s), %d quarantine "
        "entries, %d unreadable files quarantined",
        root,
        len(result.logs),
        ", ".join(shown),
        result.quarantine_entries,
        len(result.quarantined_files),
    )
    return result
