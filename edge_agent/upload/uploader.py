"""Upload files to an object store: idempotent, verified, resumable.

For each file the uploader:

1. hashes the file and compares with the SHA-256 it was told to expect
   (a file changed or damaged on flash is refused, not uploaded);
2. skips the upload when the object already exists with that SHA-256 in its
   metadata and the same size (a retry after a crash or a lost reply);
3. sends small files in one request, large ones in parts. A multipart
   upload is journalled (:class:`~edge_agent.upload.journal.UploadJournal`)
   before its first part; after a restart ``list_parts`` tells which parts
   the store holds, and only the missing ones are sent. An upload of the
   same key that the journal does not know, or that was for different
   bytes, is aborted;
4. verifies the result with a HEAD request: size, SHA-256 metadata and,
   unless disabled, the ETag (MD5, or the multipart MD5-of-MD5s).

Parts are sent one after another: a gateway's uplink is the bottleneck, and
one part in memory at a time keeps a 1 GB gateway comfortable.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from edge_agent.custody.durable import sha256_file
from edge_agent.custody.record import utc_now_iso

from .errors import IntegrityError, UploadNotFound
from .journal import JournalEntry, UploadJournal
from .layout import ObjectRef
from .metadata import SHA256_KEY, ObjectMetadata
from .store import (
    MIN_PART_SIZE_BYTES,
    BodyChecksum,
    ChecksumMode,
    ObjectInfo,
    ObjectStore,
    UploadedPart,
    multipart_etag,
)

__all__ = [
    "MULTIPART_THRESHOLD_BYTES",
    "ORPHAN_MIN_AGE_S",
    "PART_SIZE_BYTES",
    "UploadResult",
    "UploadSettings",
    "Uploader",
    "content_type_for",
]

_LOGGER = logging.getLogger(__name__)

# Files from this size on go in parts: a 50 MB ride log then is 6 parts, and
# a dropped connection costs one part, not the whole file.
MULTIPART_THRESHOLD_BYTES = 16 * 1024 * 1024
# 8 MiB parts: above S3's 5 MiB minimum, small enough to resend cheaply on a
# flaky uplink and to hold in memory on a 1 GB gateway.
PART_SIZE_BYTES = 8 * 1024 * 1024
# S3's limit on parts per upload; the part size grows to stay under it.
MAX_PARTS = 10_000
# A prefix-wide orphan sweep leaves younger uploads alone: another agent
# process (or a manual upload) may still be working on them.
ORPHAN_MIN_AGE_S = 24 * 3600.0

_CONTENT_TYPES = {
    ".json": "application/json",
    ".gz": "application/gzip",
    ".csv": "text/csv",
}


def content_type_for(path: Path) -> str:
    """Return the content type of an upload from its file name."""
    return _CONTENT_TYPES.get(path.suffix.lower(), "application/octet-stream")


@dataclass(frozen=True)
class UploadSettings:
    """Tunables of the uploader (see the module constants for the why)."""

    multipart_threshold_bytes: int = MULTIPART_THRESHOLD_BYTES
    part_size_bytes: int = PART_SIZE_BYTES
    checksum_mode: ChecksumMode = ChecksumMode.MD5
    # ETags are MD5s unless the store encrypts with KMS-managed keys; turn
    # this off for such stores (size and SHA-256 metadata are still checked).
    verify_etag: bool = True

    def __post_init__(self) -> None:
        """Reject part sizes the S3 API would refuse."""
        if self.part_size_bytes < MIN_PART_SIZE_BYTES:
            raise ValueError(
                f"upload settings: part_size_bytes {self.part_size_bytes} is below "
                f"the S3 minimum of {MIN_PART_SIZE_BYTES}"
            )
        if self.multipart_threshold_bytes < MIN_PART_SIZE_BYTES:
            raise ValueError(
                "upload settings: multipart_threshold_bytes "
                f"{self.multipart_threshold_bytes} is below {MIN_PART_SIZE_BYTES}"
            )


@dataclass(frozen=True)
class UploadResult:
    """What an upload did."""

    ref: ObjectRef
    size_bytes: int
    sha256_hex: str
    etag: str
    already_present: bool
    parts_sent: int
    parts_reused: int
    uploads_aborted: int


class Uploader:
    """Upload files to one object store, journalling multipart progress.

    One uploader is used by one thread at a time; run several uploaders
    (sharing a journal is fine) for parallel uploads of different keys.
    """

    def __init__(
        self,
        store: ObjectStore,
        journal: UploadJournal,
        settings: UploadSettings | None = None,
        *,
        on_part_done: Callable[[ObjectRef, int, int], None] | None = None,
    ) -> None:
        """Use ``store`` and ``journal``.

        Args:
            store: where objects go.
            journal: the multipart journal (one per gateway buffer).
            settings: tunables; the defaults when None.
            on_part_done: called after each part is sent and journalled, with
                the object, the part number and the part count (progress).
        """
        self.store = store
        self.journal = journal
        self.settings = settings or UploadSettings()
        self._on_part_done = on_part_done

    def part_size_for(self, size_bytes: int) -> int:
        """Return the part size used for a file of ``size_bytes``."""
        needed = math.ceil(size_bytes / MAX_PARTS)
        return max(self.settings.part_size_bytes, needed)

    def upload_file(
        self,
        ref: ObjectRef,
        path: Path,
        metadata: ObjectMetadata,
        *,
        content_type: str | None = None,
    ) -> UploadResult:
        """Upload ``path`` to ``ref`` with ``metadata``; idempotent.

        Raises:
            IntegrityError: the file does not hash to ``metadata.sha256_hex``,
                or the store's copy does not match after the upload.
            StorageError: the store failed (see the exception tree).
        """
        path = Path(path)
        size_bytes = path.stat().st_size
        sha256_hex = sha256_file(path)
        if sha256_hex != metadata.sha256_hex:
            raise IntegrityError(
                f"upload {ref} from {path}: file SHA-256 is {sha256_hex}, expected "
                f"{metadata.sha256_hex}; the file changed since it was recorded"
            )
        headers = metadata.to_s3()
        content_type = content_type or content_type_for(path)

        existing = self.store.head_object(ref.bucket, ref.key)
        if self._matches(existing, size_bytes, sha256_hex):
            assert existing is not None
            aborted = self._drop_journalled(ref)
            _LOGGER.info(
                "log %s: %s already stored with SHA-256 %s, skipped",
                metadata.log_id,
                ref,
                sha256_hex[:12],
            )
            return UploadResult(
                ref, size_bytes, sha256_hex, existing.etag, True, 0, 0, aborted
            )

        if size_bytes < self.settings.multipart_threshold_bytes:
            result = self._put_single(ref, path, headers, content_type, sha256_hex)
        else:
            result = self._put_multipart(ref, path, headers, content_type, sha256_hex)
        self._verify(ref, size_bytes, sha256_hex)
        _LOGGER.info(
            "log %s: %s committed (%d bytes, %d parts sent, %d reused)",
            metadata.log_id,
            ref,
            size_bytes,
            result.parts_sent,
            result.parts_reused,
        )
        return result

    @staticmethod
    def _matches(info: ObjectInfo | None, size_bytes: int, sha256_hex: str) -> bool:
        return (
            info is not None
            and info.size_bytes == size_bytes
            and info.metadata.get(SHA256_KEY) == sha256_hex
        )

    def _drop_journalled(self, ref: ObjectRef) -> int:
        """Abort and forget a journalled upload of a key already complete."""
        entry = self.journal.find(ref.bucket, ref.key)
        if entry is None:
            return 0
        self.store.abort_multipart_upload(ref.bucket, ref.key, entry.upload_id)
        self.journal.forget(ref.bucket, ref.key)
        return 1

    def _put_single(
        self,
        ref: ObjectRef,
        path: Path,
        headers: dict[str, str],
        content_type: str,
        sha256_hex: str,
    ) -> UploadResult:
        aborted = self._drop_journalled(ref)
        data = path.read_bytes()
        if hashlib.sha256(data).hexdigest() != sha256_hex:
            raise IntegrityError(f"put {ref}: {path} changed while being uploaded")
        checksum = BodyChecksum.of(data, self.settings.checksum_mode)
        etag = self.store.put_object(
            ref.bucket,
            ref.key,
            data,
            metadata=headers,
            checksum=checksum,
            content_type=content_type,
        )
        if self.settings.verify_etag and etag and etag != checksum.md5_hex:
            raise IntegrityError(
                f"put {ref}: store ETag {etag} is not the body MD5 {checksum.md5_hex}"
            )
        return UploadResult(ref, len(data), sha256_hex, etag, False, 1, 0, aborted)

    def _resume_entry(
        self, ref: ObjectRef, size_bytes: int, sha256_hex: str, part_size: int
    ) -> tuple[JournalEntry | None, dict[int, UploadedPart], int]:
        """Return the resumable journal entry, the store's parts, aborts made."""
        aborted = 0
        entry = self.journal.find(ref.bucket, ref.key)
        same_file = entry is not None and (
            entry.file_sha256,
            entry.file_size_bytes,
            entry.part_size_bytes,
            entry.checksum_mode,
        ) == (sha256_hex, size_bytes, part_size, self.settings.checksum_mode)
        if entry is not None and not same_file:
            _LOGGER.warning(
                "upload %s: journalled upload %s was for other bytes, aborting it",
                ref,
                entry.upload_id[:16],
            )
            self.store.abort_multipart_upload(ref.bucket, ref.key, entry.upload_id)
            self.journal.forget(ref.bucket, ref.key)
            entry, aborted = None, 1
        stored: dict[int, UploadedPart] = {}
        if entry is not None:
            try:
                parts = self.store.list_parts(ref.bucket, ref.key, entry.upload_id)
                stored = {part.part_number: part for part in parts}
            except UploadNotFound:
                _LOGGER.warning(
                    "upload %s: journalled upload %s is gone from the store, "
                    "starting over",
                    ref,
                    entry.upload_id[:16],
                )
                self.journal.forget(ref.bucket, ref.key)
                entry = None
        keep = entry.upload_id if entry is not None else None
        for upload in self.store.list_multipart_uploads(ref.bucket, prefix=ref.key):
            if upload.key == ref.key and upload.upload_id != keep:
                _LOGGER.warning(
                    "upload %s: aborting orphaned multipart upload %s",
                    ref,
                    upload.upload_id[:16],
                )
                self.store.abort_multipart_upload(ref.bucket, ref.key, upload.upload_id)
                aborted += 1
        return entry, stored, aborted

    def _put_multipart(
        self,
        ref: ObjectRef,
        path: Path,
        headers: dict[str, str],
        content_type: str,
        sha256_hex: str,
    ) -> UploadResult:
        size_bytes = path.stat().st_size
        part_size = self.part_size_for(size_bytes)
        part_count = math.ceil(size_bytes / part_size)
        mode = self.settings.checksum_mode

        # Resume what the journal and the store agree on, or start afresh.
        entry, stored, aborted = self._resume_entry(
            ref, size_bytes, sha256_hex, part_size
        )
        if entry is None:
            upload_id = self.store.create_multipart_upload(
                ref.bucket,
                ref.key,
                metadata=headers,
                checksum_mode=mode,
                content_type=content_type,
            )
            entry = JournalEntry(
                ref.bucket,
                ref.key,
                upload_id,
                sha256_hex,
                size_bytes,
                part_size,
                mode,
                utc_now_iso(),
            )
            self.journal.start(entry)
        journalled = self.journal.parts(entry.upload_id)

        # Send each part the store does not already hold with these bytes.
        done: list[UploadedPart] = []
        md5s: list[str] = []
        whole = hashlib.sha256()
        sent = reused = 0
        with open(path, "rb") as source:
            for number in range(1, part_count + 1):
                data = source.read(part_size)
                whole.update(data)
                checksum = BodyChecksum.of(data, mode)
                md5s.append(checksum.md5_hex)
                have = stored.get(number)
                known = journalled.get(number)
                if (
                    have is not None
                    and have.size_bytes == len(data)
                    and (
                        have.etag == checksum.md5_hex
                        or (known is not None and known.etag == have.etag)
                    )
                ):
                    part = replace(
                        have,
                        checksum_b64=checksum.flexible_b64,
                        checksum_mode=mode,
                    )
                    if known is None:
                        self.journal.record_part(entry.upload_id, part)
                    done.append(part)
                    reused += 1
                    continue
                etag = self.store.upload_part(
                    ref.bucket, ref.key, entry.upload_id, number, data, checksum
                )
                if self.settings.verify_etag and etag != checksum.md5_hex:
                    raise IntegrityError(
                        f"upload {ref} part {number}: store ETag {etag} is not the "
                        f"part MD5 {checksum.md5_hex}"
                    )
                part = UploadedPart(
                    number, etag, len(data), checksum.flexible_b64, mode
                )
                self.journal.record_part(entry.upload_id, part)
                done.append(part)
                sent += 1
                if _LOGGER.isEnabledFor(logging.DEBUG):
                    _LOGGER.debug("upload %s: part %d/%d sent", ref, number, part_count)
                if self._on_part_done is not None:
                    self._on_part_done(ref, number, part_count)

        # Assemble; a lost reply to an earlier complete shows as NoSuchUpload.
        if whole.hexdigest() != sha256_hex:
            raise IntegrityError(
                f"upload {ref}: {path} changed while being uploaded; the next "
                "attempt aborts this upload and starts over"
            )
        try:
            etag = self.store.complete_multipart_upload(
                ref.bucket, ref.key, entry.upload_id, done
            )
        except UploadNotFound:
            info = self.store.head_object(ref.bucket, ref.key)
            if not self._matches(info, size_bytes, sha256_hex):
                self.journal.forget(ref.bucket, ref.key)
                raise
            assert info is not None
            etag = info.etag
        self.journal.forget(ref.bucket, ref.key)
        if self.settings.verify_etag and etag and etag != multipart_etag(md5s):
            raise IntegrityError(
                f"upload {ref}: store ETag {etag} is not the multipart ETag "
                f"{multipart_etag(md5s)} of the parts sent"
            )
        return UploadResult(
            ref, size_bytes, sha256_hex, etag, False, sent, reused, aborted
        )

    def _verify(self, ref: ObjectRef, size_bytes: int, sha256_hex: str) -> None:
        info = self.store.head_object(ref.bucket, ref.key)
        if not self._matches(info, size_bytes, sha256_hex):
            found = (
                "nothing"
                if info is None
                else f"{info.size_bytes} bytes, SHA-256 {info.metadata.get(SHA256_KEY)}"
            )
            raise IntegrityError(
                f"upload {ref}: after upload the store holds {found}, expected "
                f"{size_bytes} bytes with SHA-256 {sha256_hex}"
            )

    def abort_orphaned_uploads(
        self, bucket: str, prefix: str = "", *, min_age_s: float = ORPHAN_MIN_AGE_S
    ) -> int:
        """Abort open multipart uploads under ``prefix`` the journal does not know.

        Only uploads older than ``min_age_s`` are aborted. Returns how many.
        """
        known = self.journal.upload_ids()
        cutoff = time.time() - min_age_s
        aborted = 0
        for upload in self.store.list_multipart_uploads(bucket, prefix=prefix):
            if upload.upload_id in known or upload.initiated_epoch_s > cutoff:
                continue
            self.store.abort_multipart_upload(bucket, upload.key, upload.upload_id)
            aborted += 1
            _LOGGER.warning(
                "upload %s/%s: aborted orphaned multipart upload %s",
                bucket,
                upload.key,
                upload.upload_id[:16],
            )
        return aborted
