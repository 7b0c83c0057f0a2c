"""Which archive files were already processed, so a second run skips them.

``upload-archive`` keeps one row per processed file in
``{state}/processed.db`` (SQLite): the upload, the file name, the SHA-256 of
its bytes, the software version and the crash model (its SHA-256) that
processed it, and the log id it became. A row is written only after the
file's results are uploaded, catalogued and announced, so a run killed
part-way processes the unfinished file again (every step is idempotent).
A file whose bytes, software or model changed is processed again; so is
everything with ``--reprocess``.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from dataclasses import dataclass
from pathlib import Path

__all__ = ["ProcessedFiles", "ProcessingKey"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS processed (
    upload_id TEXT NOT NULL,
    name TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    software_version TEXT NOT NULL,
    model_sha256 TEXT NOT NULL,
    log_id TEXT NOT NULL,
    processed_at TEXT NOT NULL,
    PRIMARY KEY (upload_id, name)
)
"""


@dataclass(frozen=True)
class ProcessingKey:
    """What makes a processing result the same as an earlier one."""

    upload_id: str
    name: str
    sha256_hex: str
    software_version: str
    model_sha256: str  # "" when processed without a crash model


class ProcessedFiles:
    """The ``processed.db`` of an archive state folder."""

    def __init__(self, path: Path) -> None:
        """Open (create) the table at ``path``."""
        self._db = sqlite3.connect(path)
        with self._db:
            self._db.execute(_SCHEMA)

    def log_id(self, key: ProcessingKey) -> str | None:
        """Return the log id ``key``'s file became, if processed the same way."""
        row = self._db.execute(
            "SELECT log_id FROM processed WHERE upload_id = ? AND name = ? AND "
            "sha256 = ? AND software_version = ? AND model_sha256 = ?",
            (
                key.upload_id,
                key.name,
                key.sha256_hex,
                key.software_version,
                key.model_sha256,
            ),
        ).fetchone()
        return None if row is None else str(row[0])

    def record(self, key: ProcessingKey, log_id: str) -> None:
        """Remember that ``key``'s file is processed (replaces an older row)."""
        with self._db:
            self._db.execute(
                "INSERT OR REPLACE INTO processed VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    key.upload_id,
                    key.name,
                    key.sha256_hex,
                    key.software_version,
                    key.model_sha256,
                    log_id,
                    dt.datetime.now(dt.UTC).isoformat(),
                ),
            )

    def close(self) -> None:
        """Close the database."""
        self._db.close()
