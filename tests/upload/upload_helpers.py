"""Helpers for the upload tests: files, metadata, a store that counts calls."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from edge_agent.upload import (
    BodyChecksum,
    ChecksumMode,
    MultipartUploadInfo,
    ObjectInfo,
    ObjectMetadata,
    ObjectStore,
    ObjectSummary,
    UploadedPart,
)

MIB = 1024 * 1024


def write_random_file(path: Path, size_bytes: int) -> str:
    """Write ``size_bytes`` random bytes to ``path``; return their SHA-256."""
    digest = hashlib.sha256()
    with open(path, "wb") as out:
        remaining = size_bytes
        while remaining:
            chunk = os.urandom(min(remaining, MIB))
            digest.update(chunk)
            out.write(chunk)
            remaining -= len(chunk)
    return digest.hexdigest()


def metadata_for(
    sha256_hex: str, log_id: str = "L1", kind: str = "raw_csv"
) -> ObjectMetadata:
    """Return complete metadata for a test object."""
    return ObjectMetadata(
        sha256_hex=sha256_hex,
        log_id=log_id,
        suit_id="SUIT-0001",
        rider_id="rider-7",
        kind=kind,
        log_start_utc="2026-05-01T10:00:00Z",
        log_end_utc="2026-05-01T10:36:00Z",
        sample_count=2_160_000,
        software_version="0.1.0",
        model_version="crash-v1.2",
    )


class CountingStore:
    """Wrap a store, record the parts sent and optionally fail after one."""

    def __init__(
        self,
        inner: ObjectStore,
        *,
        after_part: Callable[[int], None] | None = None,
    ) -> None:
        self.inner = inner
        self.parts_sent: list[int] = []
        self.puts = 0
        self.creates = 0
        self._after_part = after_part

    @property
    def name(self) -> str:
        return "counting:" + self.inner.name

    def ensure_bucket(self, bucket: str) -> None:
        self.inner.ensure_bucket(bucket)

    def head_object(self, bucket: str, key: str) -> ObjectInfo | None:
        return self.inner.head_object(bucket, key)

    def put_object(
        self,
        bucket: str,
        key: str,
        data: bytes,
        *,
        metadata: Mapping[str, str],
        checksum: BodyChecksum,
        content_type: str | None = None,
    ) -> str:
        self.puts += 1
        return self.inner.put_object(
            bucket,
            key,
            data,
            metadata=metadata,
            checksum=checksum,
            content_type=content_type,
        )

    def create_multipart_upload(
        self,
        bucket: str,
        key: str,
        *,
        metadata: Mapping[str, str],
        checksum_mode: ChecksumMode,
        content_type: str | None = None,
    ) -> str:
        self.creates += 1
        return self.inner.create_multipart_upload(
            bucket,
            key,
            metadata=metadata,
            checksum_mode=checksum_mode,
            content_type=content_type,
        )

    def upload_part(
        self,
        bucket: str,
        key: str,
        upload_id: str,
        part_number: int,
        data: bytes,
        checksum: BodyChecksum,
    ) -> str:
        etag = self.inner.upload_part(
            bucket, key, upload_id, part_number, data, checksum
        )
        self.parts_sent.append(part_number)
        if self._after_part is not None:
            self._after_part(part_number)
        return etag

    def list_parts(self, bucket: str, key: str, upload_id: str) -> list[UploadedPart]:
        return self.inner.list_parts(bucket, key, upload_id)

    def complete_multipart_upload(
        self, bucket: str, key: str, upload_id: str, parts: Sequence[UploadedPart]
    ) -> str:
        return self.inner.complete_multipart_upload(bucket, key, upload_id, parts)

    def abort_multipart_upload(self, bucket: str, key: str, upload_id: str) -> None:
        self.inner.abort_multipart_upload(bucket, key, upload_id)

    def list_multipart_uploads(
        self, bucket: str, prefix: str = ""
    ) -> list[MultipartUploadInfo]:
        return self.inner.list_multipart_uploads(bucket, prefix)

    def get_object(self, bucket: str, key: str) -> bytes:
        return self.inner.get_object(bucket, key)

    def download_file(self, bucket: str, key: str, target: Path) -> None:
        self.inner.download_file(bucket, key, target)

    def list_objects(self, bucket: str, prefix: str = "") -> list[ObjectSummary]:
        return self.inner.list_objects(bucket, prefix)

    def delete_object(self, bucket: str, key: str) -> None:
        self.inner.delete_object(bucket, key)
