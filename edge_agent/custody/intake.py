"""Bytes coming into custody: pulls from a suit and imports from archives.

These functions hold the rules of the ``LogSink`` side of the buffer; the
:class:`~edge_agent.custody.buffer.CustodyBuffer` methods add locking, the
read-only check and the disk budget. Each write is fsynced (and the
directory after a create) before the index row that depends on it is
committed. Bytes go through :class:`~edge_agent.custody.files.DataFiles`, so
they land encrypted when a key is configured; offsets and digests are always
of the plaintext.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from pathlib import Path
from typing import Any

import sqlite_utils

from .durable import fsync_dir, sha256_file, temp_path_for
from .errors import (
    ChecksumMismatchError,
    EncryptedDataError,
    IncompleteLogError,
    InvalidTransitionError,
    LogConflictError,
    OffsetMismatchError,
    QuarantinedLogError,
    UnknownLogError,
    WrongKeyError,
)
from .files import DataFiles
from .index import fetch_log_row, update_log
from .paths import LOGS_DIR, RAW_SUFFIX
from .quarantine import quarantine_log
from .record import utc_now_iso
from .states import LogState

__all__ = [
    "MAX_PULL_ATTEMPTS",
    "append_bytes",
    "begin_pull",
    "check_announcement",
    "check_log_id",
    "complete_pull",
    "import_file",
]

_LOGGER = logging.getLogger(__name__)

# A log whose pull was quarantined this many times (checksum mismatch each
# time) is refused: the suit's copy itself is probably bad, and looping over
# the BLE link would drain the suit and block its other logs.
MAX_PULL_ATTEMPTS = 3
# Log ids become file names: keep them to a portable, unambiguous alphabet.
_LOG_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_SHA256_RE = re.compile(r"[0-9a-f]{64}")
# Longest file suffix kept from an imported file's name (".csv.gz", ...).
MAX_SUFFIX_CHARS = 32


def check_log_id(log_id: str) -> None:
    """Raise ValueError unless ``log_id`` is safe to use as a file name."""
    if not _LOG_ID_RE.fullmatch(log_id):
        raise ValueError(
            f"log id {log_id!r}: expected 1-128 characters of A-Z a-z 0-9 . _ - "
            "starting with a letter or digit"
        )


def _new_row(
    *,
    log_id: str,
    suit_serial: str,
    rider_id: str | None,
    state: LogState,
    source: str,
    size_bytes: int,
    sha256_hex: str,
    durable_offset: int,
    raw_relpath: str,
    original_name: str | None,
) -> dict[str, Any]:
    now = utc_now_iso()
    return {
        "log_id": log_id,
        "suit_serial": suit_serial,
        "rider_id": rider_id,
        "state": state.value,
        "source": source,
        "size_bytes": size_bytes,
        "sha256_hex": sha256_hex,
        "durable_offset": durable_offset,
        "raw_relpath": raw_relpath,
        "original_name": original_name,
        "outputs_json": "{}",
        "analytics_json": None,
        "crash_detected": None,
        "object_keys_json": "{}",
        "pull_attempts": 1,
        "error": None,
        "quarantine_relpath": None,
        "state_times_json": json.dumps({state.value: now}),
        "created_at": now,
        "updated_at": now,
    }


def _fresh_raw_file(root: Path, files: DataFiles, log_id: str) -> Path:
    """Create an empty, durable raw file for a pull."""
    raw = root / LOGS_DIR / f"{log_id}{RAW_SUFFIX}"
    files.create_raw(raw)
    return raw


def check_announcement(log_id: str, size_bytes: int, sha256_hex: str) -> str:
    """Validate a log's id, size and digest; return the digest in lower case."""
    check_log_id(log_id)
    sha256_hex = sha256_hex.lower()
    if size_bytes < 0 or not _SHA256_RE.fullmatch(sha256_hex):
        raise ValueError(
            f"log {log_id!r}: expected size_bytes >= 0 and a 64-digit hex "
            f"SHA-256, got {size_bytes} and {sha256_hex!r}"
        )
    return sha256_hex


def begin_pull(
    db: sqlite_utils.Database,
    root: Path,
    files: DataFiles,
    suit_serial: str,
    log_id: str,
    size_bytes: int,
    sha256_hex: str,
) -> int:
    """Register a pull (idempotently) and return its resume offset."""
    sha256_hex = check_announcement(log_id, size_bytes, sha256_hex)
    row = fetch_log_row(db, log_id)
    if row is None:
        raw = _fresh_raw_file(root, files, log_id)
        db.table("logs").insert(
            _new_row(
                log_id=log_id,
                suit_serial=suit_serial,
                rider_id=None,
                state=LogState.PULLING,
                source="ble",
                size_bytes=size_bytes,
                sha256_hex=sha256_hex,
                durable_offset=0,
                raw_relpath=str(raw.relative_to(root)),
                original_name=None,
            )
        )
        _LOGGER.info(
            "suit %s: log %s registered (%d bytes)", suit_serial, log_id, size_bytes
        )
        return 0
    if row.get("rebuilt_at"):
        _adopt_announcement(db, root, files, row, suit_serial, size_bytes, sha256_hex)
        row = _row(db, log_id)
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
        return _restart_pull(db, root, files, row)
    return size_bytes


def _adopt_announcement(
    db: sqlite_utils.Database,
    root: Path,
    files: DataFiles,
    row: dict[str, Any],
    suit_serial: str,
    size_bytes: int,
    sha256_hex: str,
) -> None:
    """Take the suit's size and digest for a log whose row was rebuilt from disk.

    A rebuilt row only knows the bytes on the gateway. When the suit
    announces the same bytes, the row is simply confirmed. When it announces
    a log at least as long, the local bytes are taken as an interrupted pull:
    it resumes at their end, and completion checks the whole log against the
    suit's SHA-256 (a mismatch quarantines it and the pull starts over). A
    shorter announcement is left to the caller's conflict check.
    """
    state = LogState(row["state"])
    held = int(row["durable_offset"])
    if row["source"] != "ble" or state not in (LogState.PULLING, LogState.PULLED):
        return
    same = (row["size_bytes"], row["sha256_hex"]) == (size_bytes, sha256_hex)
    if not same and size_bytes < held:
        return
    if not same and state is LogState.PULLED:
        files.trim(root / row["raw_relpath"], held)
    with db.atomic():
        update_log(
            db,
            row["log_id"],
            expect_states=[state],
            new_state=None if same else LogState.PULLING,
            size_bytes=size_bytes,
            sha256_hex=sha256_hex,
            suit_serial=suit_serial,
            rebuilt_at=None,
        )
    if not same:
        _LOGGER.warning(
            "suit %s: log %s (index rebuilt) announced as %d bytes; resuming "
            "the pull at byte %d",
            suit_serial,
            row["log_id"],
            size_bytes,
            held,
        )


def _restart_pull(
    db: sqlite_utils.Database, root: Path, files: DataFiles, row: dict[str, Any]
) -> int:
    log_id = row["log_id"]
    attempts = int(row["pull_attempts"])
    if row["source"] != "ble" or attempts >= MAX_PULL_ATTEMPTS:
        raise QuarantinedLogError(
            f"log {log_id!r} of suit {row['suit_serial']}: quarantined after "
            f"{attempts} pull(s) ({row['error']}); inspect "
            f"{row['quarantine_relpath']} before pulling it again"
        )
    raw = _fresh_raw_file(root, files, log_id)
    with db.atomic():
        update_log(
            db,
            log_id,
            expect_states=[LogState.QUARANTINED],
            new_state=LogState.PULLING,
            durable_offset=0,
            raw_relpath=str(raw.relative_to(root)),
            pull_attempts=attempts + 1,
        )
    _LOGGER.warning(
        "suit %s: log %s pulled again from 0 (attempt %d/%d)",
        row["suit_serial"],
        log_id,
        attempts + 1,
        MAX_PULL_ATTEMPTS,
    )
    return 0


def _row(db: sqlite_utils.Database, log_id: str) -> dict[str, Any]:
    row = fetch_log_row(db, log_id)
    if row is None:
        raise UnknownLogError(log_id)
    return row


def append_bytes(
    db: sqlite_utils.Database,
    root: Path,
    files: DataFiles,
    log_id: str,
    offset: int,
    data: bytes,
) -> None:
    """Write ``data`` at ``offset`` and fsync it, then commit the new offset."""
    row = _row(db, log_id)
    if row["state"] != LogState.PULLING.value:
        raise InvalidTransitionError(log_id, row["state"], "append")
    durable = int(row["durable_offset"])
    end = offset + len(data)
    if offset != durable or end > row["size_bytes"]:
        raise OffsetMismatchError(
            f"log {log_id!r}: append of {len(data)} bytes at offset {offset}; "
            f"expected offset {durable} and an end at most {row['size_bytes']}"
        )
    files.append(root / row["raw_relpath"], offset, data)
    with db.atomic():
        update_log(db, log_id, expect_states=[LogState.PULLING], durable_offset=end)


def complete_pull(
    db: sqlite_utils.Database, root: Path, files: DataFiles, log_id: str
) -> bool:
    """Verify a pulled log's SHA-256 and mark it pulled.

    Returns False when the log was already complete (nothing done).
    """
    row = _row(db, log_id)
    if row["state"] == LogState.QUARANTINED.value:
        raise InvalidTransitionError(log_id, row["state"], "pulled")
    if row["state"] != LogState.PULLING.value:
        return False
    if row["durable_offset"] != row["size_bytes"]:
        raise IncompleteLogError(
            f"log {log_id!r}: {row['durable_offset']} of {row['size_bytes']} "
            "bytes stored; resume the pull first"
        )
    raw = root / row["raw_relpath"]
    try:
        _size, found = files.digest(raw, sealed=False, limit_bytes=row["size_bytes"])
    except WrongKeyError:
        raise
    except EncryptedDataError as exc:
        quarantine_log(db, root, row, f"stored bytes fail authentication: {exc}")
        raise
    if found != row["sha256_hex"]:
        reason = (
            f"SHA-256 mismatch after pull: expected {row['sha256_hex']}, "
            f"found {found} over {row['size_bytes']} bytes"
        )
        quarantine_log(db, root, row, reason)
        raise ChecksumMismatchError(log_id, row["sha256_hex"], found)
    files.seal(raw, int(row["size_bytes"]))
    with db.atomic():
        update_log(
            db, log_id, expect_states=[LogState.PULLING], new_state=LogState.PULLED
        )
    _LOGGER.info(
        "suit %s: log %s pulled (%d bytes, SHA-256 ok)",
        row["suit_serial"],
        log_id,
        row["size_bytes"],
    )
    return True


def import_file(
    db: sqlite_utils.Database,
    root: Path,
    files: DataFiles,
    lock: threading.RLock,
    source: Path,
    suit_serial: str,
    log_id: str,
    rider_id: str | None,
) -> None:
    """Copy an archived file in and register it as pulled (idempotent).

    The copy runs without ``lock`` held, so a long import does not stall a
    BLE pull writing into the same buffer. An import that was quarantined
    before (say, for missing unit options) is taken in again as pulled: the
    operator asked for it once more, perhaps with other options; the earlier
    quarantine entry stays where it is as the record of that refusal.
    """
    check_log_id(log_id)
    suffix = "".join(source.suffixes)[-MAX_SUFFIX_CHARS:] or RAW_SUFFIX
    target = root / LOGS_DIR / f"{log_id}{suffix}"

    def same_content(existing: dict[str, Any]) -> None:
        found = sha256_file(source)
        if found != existing["sha256_hex"]:
            raise LogConflictError(
                f"import {source}: log id {log_id!r} is already registered "
                f"with SHA-256 {existing['sha256_hex']}, file has {found}"
            )

    def refused_import(row: dict[str, Any] | None) -> bool:
        return (
            row is not None
            and row["state"] == LogState.QUARANTINED.value
            and row["source"] == "import"
        )

    with lock:
        existing = fetch_log_row(db, log_id)
    if existing is not None and not refused_import(existing):
        same_content(existing)
        _fill_identity(db, lock, existing, suit_serial, rider_id)
        return
    if existing is not None:
        same_content(existing)

    # Copy to a private temporary name, then publish it under the lock.
    staging = temp_path_for(target)
    size_bytes, sha256_hex = files.store(source, staging)
    try:
        with lock:
            existing = fetch_log_row(db, log_id)
            if existing is not None and not refused_import(existing):
                same_content(existing)
                _fill_identity(db, lock, existing, suit_serial, rider_id)
                return
            staging.replace(target)
            fsync_dir(target.parent)
            if existing is not None:
                _retake_refused(
                    db,
                    existing,
                    target.relative_to(root),
                    source,
                    suit_serial,
                    rider_id,
                )
                return
            db.table("logs").insert(
                _new_row(
                    log_id=log_id,
                    suit_serial=suit_serial,
                    rider_id=rider_id,
                    state=LogState.PULLED,
                    source="import",
                    size_bytes=size_bytes,
                    sha256_hex=sha256_hex,
                    durable_offset=size_bytes,
                    raw_relpath=str(target.relative_to(root)),
                    original_name=source.name,
                )
            )
    finally:
        staging.unlink(missing_ok=True)
    _LOGGER.info(
        "suit %s: log %s imported from %s (%d bytes)",
        suit_serial,
        log_id,
        source,
        size_bytes,
    )


def _retake_refused(
    db: sqlite_utils.Database,
    row: dict[str, Any],
    raw_relpath: Path,
    source: Path,
    suit_serial: str,
    rider_id: str | None,
) -> None:
    """Turn a quarantined import back into a pulled log (the caller holds the
    lock; its bytes are in place again at ``raw_relpath``). The refused import
    produced nothing, so it takes the suit and rider this import names."""
    with db.atomic():
        update_log(
            db,
            row["log_id"],
            expect_states=[LogState.QUARANTINED],
            new_state=LogState.PULLED,
            suit_serial=suit_serial,
            rider_id=rider_id,
            raw_relpath=str(raw_relpath),
            original_name=source.name,
            outputs_json="{}",
            analytics_json=None,
            crash_detected=None,
            error=None,
            quarantine_relpath=None,
        )
    _LOGGER.warning(
        "log %s: imported again from %s after it was refused (%s); processing it anew",
        row["log_id"],
        source,
        row["error"],
    )


def _fill_identity(
    db: sqlite_utils.Database,
    lock: threading.RLock,
    row: dict[str, Any],
    suit_serial: str,
    rider_id: str | None,
) -> None:
    """Give a rebuilt import row the suit and rider its re-import names."""
    if not row.get("rebuilt_at"):
        return
    with lock, db.atomic():
        update_log(
            db,
            row["log_id"],
            expect_states=[LogState(row["state"])],
            suit_serial=suit_serial,
            rider_id=row["rider_id"] or rider_id,
            rebuilt_at=None,
        )
