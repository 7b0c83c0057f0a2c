"""The object store interface shared by the local-directory and S3 backends.

Both backends speak the same small subset of the S3 model: buckets, keys,
user metadata (lowercase ASCII keys, string values), single puts with a body
checksum, and multipart uploads that can be listed and resumed. The uploader
only depends on this Protocol.
"""

from __future__ import annotations

import base64
import enum
import hashlib
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

__all__ = [
    "MIN_PART_SIZE_BYTES",
    "BodyChecksum",
    "ChecksumMode",
    "MultipartUploadInfo",
    "ObjectInfo",
    "ObjectStore",
    "ObjectSummary",
    "UploadedPart",
    "multipart_etag",
]

# S3's smallest allowed part (all but the last); the local store enforces it
# too so that both backends accept exactly the same uploads.
MIN_PART_SIZE_BYTES = 5 * 1024 * 1024


class ChecksumMode(enum.StrEnum):
    """How each request body is protected on the wire.

    ``md5`` sends Content-MD5, which every S3-compatible store checks.
    ``sha256`` and ``crc32`` use AWS's flexible checksums, which not every
    store supports. The whole object's SHA-256 is stored in the metadata and
    verified after the upload in every mode.
    """

    MD5 = "md5"
    SHA256 = "sha256"
    CRC32 = "crc32"


@dataclass(frozen=True)
class BodyChecksum:
    """Checksums of one request body, computed before it is sent."""

    mode: ChecksumMode
    md5_b64: str
    flexible_b64: str | None = None

    @classmethod
    def of(cls, data: bytes, mode: ChecksumMode) -> BodyChecksum:
        """Compute the checksums ``mode`` needs for ``data``."""
        md5_b64 = base64.b64encode(hashlib.md5(data).digest()).decode()
        flexible: str | None = None
        if mode is ChecksumMode.SHA256:
            flexible = base64.b64encode(hashlib.sha256(data).digest()).decode()
        elif mode is ChecksumMode.CRC32:
            crc = zlib.crc32(data).to_bytes(4, "big")
            flexible = base64.b64encode(crc).decode()
        return cls(mode=mode, md5_b64=md5_b64, flexible_b64=flexible)

    @property
    def md5_hex(self) -> str:
        """Return the MD5 as hex (the ETag of an unencrypted part or object)."""
        return base64.b64decode(self.md5_b64).hex()


@dataclass(frozen=True)
class UploadedPart:
    """A part of a multipart upload as the store acknowledged it."""

    part_number: int
    etag: str
    size_bytes: int
    checksum_b64: str | None = None
    checksum_mode: ChecksumMode = ChecksumMode.MD5


@dataclass(frozen=True)
class MultipartUploadInfo:
    """A multipart upload that was started and neither completed nor aborted."""

    bucket: str
    key: str
    upload_id: str
    initiated_epoch_s: float


@dataclass(frozen=True)
class ObjectInfo:
    """What a HEAD request tells about an object."""

    bucket: str
    key: str
    size_bytes: int
    etag: str
    metadata: dict[str, str] = field(default_factory=dict)
    content_type: str | None = None


@dataclass(frozen=True)
class ObjectSummary:
    """One entry of a listing."""

    key: str
    size_bytes: int
    etag: str


def multipart_etag(part_md5_hex: Sequence[str]) -> str:
    """Return the ETag S3 gives a multipart object with these part MD5s."""
    joined = b"".join(bytes.fromhex(value) for value in part_md5_hex)
    return f"{hashlib.md5(joined).hexdigest()}-{len(part_md5_hex)}"


class ObjectStore(Protocol):
    """Buckets of objects with metadata, single and multipart uploads."""

    @property
    def name(self) -> str:
        """Return a short description for log lines (backend and location)."""
        ...

    def ensure_bucket(self, bucket: str) -> None:
        """Create ``bucket`` if it does not exist."""
        ...

    def head_object(self, bucket: str, key: str) -> ObjectInfo | None:
        """Return the object's size, ETag and metadata, or None if absent."""
        ...

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
        """Store ``data`` under ``key`` in one request; return the ETag."""
        ...

    def create_multipart_upload(
        self,
        bucket: str,
        key: str,
        *,
        metadata: Mapping[str, str],
        checksum_mode: ChecksumMode,
        content_type: str | None = None,
    ) -> str:
        """Start a multipart upload; return its upload id."""
        ...

    def upload_part(
        self,
        bucket: str,
        key: str,
        upload_id: str,
        part_number: int,
        data: bytes,
        checksum: BodyChecksum,
    ) -> str:
        """Store one part (numbered from 1); return its ETag."""
        ...

    def list_parts(self, bucket: str, key: str, upload_id: str) -> list[UploadedPart]:
        """Return the parts the store holds for an upload, by part number."""
        ...

    def complete_multipart_upload(
        self, bucket: str, key: str, upload_id: str, parts: Sequence[UploadedPart]
    ) -> str:
        """Assemble the object from ``parts``; return its ETag."""
        ...

    def abort_multipart_upload(self, bucket: str, key: str, upload_id: str) -> None:
        """Drop an upload and its parts; an unknown upload id is not an error."""
        ...

    def list_multipart_uploads(
        self, bucket: str, prefix: str = ""
    ) -> list[MultipartUploadInfo]:
        """Return the open multipart uploads whose key starts with ``prefix``."""
        ...

    def get_object(self, bucket: str, key: str) -> bytes:
        """Return an object's bytes (for small objects)."""
        ...

    def download_file(self, bucket: str, key: str, target: Path) -> None:
        """Write an object's bytes to ``target``."""
        ...

    def list_objects(self, bucket: str, prefix: str = "") -> list[ObjectSummary]:
        """Return the objects whose key starts with ``prefix``, sorted by key."""
        ...

    def delete_object(self, bucket: str, key: str) -> None:
        """Delete an object; a missing object is not an error."""
        ...
