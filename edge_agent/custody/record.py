"""Value types the custody buffer hands out: log records, work items, policy."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .states import LogState, WorkAction

__all__ = [
    "LogRecord",
    "PendingWork",
    "QuarantineEntry",
    "RetentionPolicy",
    "parse_time",
    "utc_now_iso",
]


def utc_now_iso() -> str:
    """Return the current UTC time as ISO 8601 with milliseconds."""
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def parse_time(text: str) -> datetime:
    """Parse a timestamp written by :func:`utc_now_iso`."""
    return datetime.fromisoformat(text)


def _resolve(root: Path, stored: str | None) -> Path | None:
    if stored is None:
        return None
    path = Path(stored)
    return path if path.is_absolute() else root / path


@dataclass(frozen=True)
class RetentionPolicy:
    """What :meth:`CustodyBuffer.purge` deletes once a log is released.

    ``keep_raw_after_upload`` keeps the suit's raw log bytes on the gateway
    after the processed outputs are deleted (useful while a fleet's decoder is
    new); it makes disk use grow with every ride, so it is off by default.
    """

    keep_raw_after_upload: bool = False


@dataclass(frozen=True)
class LogRecord:
    """One log as the custody index knows it.

    ``durable_offset`` is the number of bytes known to be on stable storage;
    for a complete log it equals ``size_bytes``. Paths are absolute; with
    encryption on, ``raw_path`` and ``outputs`` are ciphertext (read them
    through the buffer), while sizes and digests are of the plaintext.
    ``evicted_at`` is when the disk budget deleted the local copies of a log
    object storage holds; ``rebuilt`` marks a row recreated from the files
    after the index was lost.
    """

    log_id: str
    suit_serial: str
    rider_id: str | None
    state: LogState
    source: str
    size_bytes: int
    sha256_hex: str
    durable_offset: int
    raw_path: Path | None
    original_name: str | None
    outputs: dict[str, Path]
    output_sha256: dict[str, str]
    analytics: dict[str, Any] | None
    crash_detected: bool | None
    object_keys: dict[str, str]
    pull_attempts: int
    error: str | None
    quarantine_path: Path | None
    state_times: dict[LogState, datetime]
    created_at: datetime
    updated_at: datetime
    evicted_at: datetime | None = None
    rebuilt: bool = False

    @classmethod
    def from_row(cls, row: dict[str, Any], root: Path) -> LogRecord:
        """Build a record from an index row, resolving paths against ``root``."""
        outputs_meta: dict[str, dict[str, Any]] = json.loads(row["outputs_json"])
        crash = row["crash_detected"]
        analytics = row["analytics_json"]
        return cls(
            log_id=row["log_id"],
            suit_serial=row["suit_serial"],
            rider_id=row["rider_id"],
            state=LogState(row["state"]),
            source=row["source"],
            size_bytes=row["size_bytes"],
            sha256_hex=row["sha256_hex"],
            durable_offset=row["durable_offset"],
            raw_path=_resolve(root, row["raw_relpath"]),
            original_name=row["original_name"],
            outputs={
                name: root / meta["path"]
                if not Path(meta["path"]).is_absolute()
                else Path(meta["path"])
                for name, meta in outputs_meta.items()
            },
            output_sha256={
                name: str(meta["sha256"]) for name, meta in outputs_meta.items()
            },
            analytics=None if analytics is None else json.loads(analytics),
            crash_detected=None if crash is None else bool(crash),
            object_keys=json.loads(row["object_keys_json"]),
            pull_attempts=row["pull_attempts"],
            error=row["error"],
            quarantine_path=_resolve(root, row["quarantine_relpath"]),
            state_times={
                LogState(state): parse_time(stamp)
                for state, stamp in json.loads(row["state_times_json"]).items()
            },
            created_at=parse_time(row["created_at"]),
            updated_at=parse_time(row["updated_at"]),
            evicted_at=(
                None if not row.get("evicted_at") else parse_time(row["evicted_at"])
            ),
            rebuilt=bool(row.get("rebuilt_at")),
        )


@dataclass(frozen=True)
class PendingWork:
    """A log waiting for the agent, and the action it waits for."""

    action: WorkAction
    record: LogRecord

    @property
    def log_id(self) -> str:
        """Return the id of the log this work item is about."""
        return self.record.log_id


@dataclass(frozen=True)
class QuarantineEntry:
    """Data set aside because it was bad, with the reason and where it is."""

    entry_id: int
    name: str
    log_id: str | None
    original_path: str
    stored_path: Path
    reason: str
    size_bytes: int
    quarantined_at: datetime
    files: list[str] = field(default_factory=list)
