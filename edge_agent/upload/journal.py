"""Journal of multipart uploads in progress, so a restart resumes them.

One SQLite file (WAL, ``synchronous=FULL``) with two tables: ``uploads``
(one row per bucket/key being uploaded: the upload id and the identity of
the file being sent) and ``parts`` (each part the store acknowledged). A
part is journalled only after the store acknowledged it, and the upload row
is written before any part is sent, so after a crash the journal never
claims more than the store holds; the uploader reconciles the rest with
``list_parts``.
"""

from __future__ import annotations

import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import sqlite_utils

from .errors import StorageError
from .store import ChecksumMode, UploadedPart

__all__ = ["JournalEntry", "UploadJournal"]

# Seconds to wait for a lock held by another connection to the same file.
BUSY_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class JournalEntry:
    """A multipart upload the gateway started and has not finished."""

    bucket: str
    key: str
    upload_id: str
    file_sha256: str
    file_size_bytes: int
    part_size_bytes: int
    checksum_mode: ChecksumMode
    started_at: str


class UploadJournal:
    """Durable record of multipart uploads and their acknowledged parts."""

    def __init__(self, path: Path) -> None:
        """Open (creating if needed) the journal at ``path``.

        Raises:
            StorageError: the file is not a usable SQLite database.
        """
        self._path = Path(path)
        self._lock = threading.RLock()
        try:
            conn = sqlite3.connect(
                str(self._path), timeout=BUSY_TIMEOUT_S, check_same_thread=False
            )
            self._db = sqlite_utils.Database(conn)
            self._db.enable_wal()
            self._db.execute("PRAGMA synchronous=FULL")
            with self._db.atomic():
                self._db.table("uploads").create(
                    {
                        "bucket": str,
                        "key": str,
                        "upload_id": str,
                        "file_sha256": str,
                        "file_size_bytes": int,
                        "part_size_bytes": int,
                        "checksum_mode": str,
                        "started_at": str,
                    },
                    pk=("bucket", "key"),
                    not_null={"upload_id", "file_sha256"},
                    if_not_exists=True,
                )
                self._db.table("parts").create(
                    {
                        "upload_id": str,
                        "part_number": int,
                        "etag": str,
                        "size_bytes": int,
                        "checksum_b64": str,
                        "checksum_mode": str,
                    },
                    pk=("upload_id", "part_number"),
                    if_not_exists=True,
                )
        except sqlite3.DatabaseError as exc:
            raise StorageError(
                f"upload journal {self._path}: cannot open ({exc}); move it aside, "
                "unfinished multipart uploads will then be aborted and restarted"
            ) from exc

    @property
    def path(self) -> Path:
        """Return the journal file's path."""
        return self._path

    def close(self) -> None:
        """Close the journal file."""
        with self._lock:
            self._db.close()

    def __enter__(self) -> UploadJournal:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def find(self, bucket: str, key: str) -> JournalEntry | None:
        """Return the journalled upload of ``bucket/key``, if any."""
        with self._lock:
            rows = list(
                self._db.table("uploads").rows_where(
                    "bucket = ? AND key = ?", [bucket, key]
                )
            )
        if not rows:
            return None
        row = rows[0]
        return JournalEntry(
            bucket=row["bucket"],
            key=row["key"],
            upload_id=row["upload_id"],
            file_sha256=row["file_sha256"],
            file_size_bytes=row["file_size_bytes"],
            part_size_bytes=row["part_size_bytes"],
            checksum_mode=ChecksumMode(row["checksum_mode"]),
            started_at=row["started_at"],
        )

    def start(self, entry: JournalEntry) -> None:
        """Record a new upload (replacing any previous one for the key)."""
        with self._lock, self._db.atomic():
            self._forget(entry.bucket, entry.key)
            self._db.table("uploads").insert(
                {
                    "bucket": entry.bucket,
                    "key": entry.key,
                    "upload_id": entry.upload_id,
                    "file_sha256": entry.file_sha256,
                    "file_size_bytes": entry.file_size_bytes,
                    "part_size_bytes": entry.part_size_bytes,
                    "checksum_mode": entry.checksum_mode.value,
                    "started_at": entry.started_at,
                }
            )

    def record_part(self, upload_id: str, part: UploadedPart) -> None:
        """Record a part the store acknowledged."""
        with self._lock, self._db.atomic():
            self._db.table("parts").upsert(
                {
                    "upload_id": upload_id,
                    "part_number": part.part_number,
                    "etag": part.etag,
                    "size_bytes": part.size_bytes,
                    "checksum_b64": part.checksum_b64,
                    "checksum_mode": part.checksum_mode.value,
                },
                pk=("upload_id", "part_number"),
            )

    def parts(self, upload_id: str) -> dict[int, UploadedPart]:
        """Return the journalled parts of an upload by part number."""
        with self._lock:
            rows = list(
                self._db.table("parts").rows_where("upload_id = ?", [upload_id])
            )
        return {
            row["part_number"]: UploadedPart(
                part_number=row["part_number"],
                etag=row["etag"],
                size_bytes=row["size_bytes"],
                checksum_b64=row["checksum_b64"],
                checksum_mode=ChecksumMode(row["checksum_mode"]),
            )
            for row in rows
        }

    def _forget(self, bucket: str, key: str) -> None:
        self._db.execute(
            "DELETE FROM parts WHERE upload_id IN "
            "(SELECT upload_id FROM uploads WHERE bucket = ? AND key = ?)",
            [bucket, key],
        )
        self._db.execute(
            "DELETE FROM uploads WHERE bucket = ? AND key = ?", [bucket, key]
        )

    def forget(self, bucket: str, key: str) -> None:
        """Drop the upload of ``bucket/key`` and its parts from the journal."""
        with self._lock, self._db.atomic():
            self._forget(bucket, key)

    def upload_ids(self) -> set[str]:
        """Return the ids of every journalled upload."""
        with self._lock:
            return {
                row["upload_id"]
                for row in self._db.table("uploads").rows_where(select="upload_id")
            }
