"""Object store in a local directory: the embedded default backend.

A bucket is a folder under the root and a key a relative path below it::

    <root>/<bucket>/<key>                 the object's bytes
    <root>/<bucket>/<key>.meta.json       its metadata, ETag and content type
    <root>/.multipart/<bucket>/<id>/      an open multipart upload

Writes go to a temporary file, are fsynced and renamed into place, and the
directory is fsynced, so an object is either absent or complete. The old
sidecar is removed before a new object replaces the old one and the new
sidecar is written last: after a crash an object may lack its sidecar (it
then has no SHA-256 and is uploaded again), but a sidecar never describes
other bytes than the object's. Checks mirror S3's (Content-MD5, part sizes),
so both backends accept and refuse the same uploads.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import shutil
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from edge_agent.custody.durable import (
    atomic_copy,
    atomic_write_bytes,
    fsync_dir,
    is_temp_file,
    temp_path_for,
)

from .errors import (
    BucketNotFound,
    IntegrityError,
    InvalidObjectKey,
    ObjectNotFound,
    StorageError,
    UploadNotFound,
)
from .store import (
    MIN_PART_SIZE_BYTES,
    BodyChecksum,
    ChecksumMode,
    MultipartUploadInfo,
    ObjectInfo,
    ObjectSummary,
    UploadedPart,
    multipart_etag,
)

__all__ = ["META_SUFFIX", "LocalDirStore"]

META_SUFFIX = ".meta.json"
_MULTIPART_DIR = ".multipart"
_UPLOAD_FILE = "upload.json"
_BUCKET_RE = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")


@contextmanager
def _mapped(what: str) -> Iterator[None]:
    """Map OS errors of one operation into the storage exception tree."""
    try:
        yield
    except StorageError:
        raise
    except FileNotFoundError as exc:
        raise ObjectNotFound(f"{what}: not found ({exc.filename})") from exc
    except OSError as exc:
        raise StorageError(f"{what}: {exc.strerror or exc}") from exc


class LocalDirStore:
    """Buckets as folders below ``root``; see the module docstring."""

    def __init__(self, root: Path) -> None:
        """Use ``root`` (created if missing) as the store's directory."""
        self._root = Path(root).resolve()
        self._root.mkdir(parents=True, exist_ok=True)

    @property
    def name(self) -> str:
        """Return a short description for log lines."""
        return f"local:{self._root}"

    @property
    def root(self) -> Path:
        """Return the store's root directory."""
        return self._root

    # -- paths ------------------------------------------------------------

    def _bucket_dir(self, bucket: str, *, must_exist: bool = True) -> Path:
        if not _BUCKET_RE.fullmatch(bucket) or ".." in bucket:
            raise InvalidObjectKey(
                f"bucket {bucket!r}: expected 3-63 characters of a-z 0-9 . -"
            )
        folder = self._root / bucket
        if must_exist and not folder.is_dir():
            raise BucketNotFound(f"bucket {bucket!r} does not exist in {self.name}")
        return folder

    def _object_path(self, bucket: str, key: str) -> Path:
        parts = key.split("/")
        if (
            not key
            or len(key.encode()) > 1024
            or any(part in ("", ".", "..") for part in parts)
            or "\0" in key
            or key.endswith(META_SUFFIX)
            or is_temp_file(Path(parts[-1]))
        ):
            raise InvalidObjectKey(
                f"key {key!r}: not usable in a local store (empty or dot "
                f"segments, leading/trailing '/', or a name ending in {META_SUFFIX})"
            )
        return self._bucket_dir(bucket) / key

    @staticmethod
    def _sidecar(path: Path) -> Path:
        return path.with_name(path.name + META_SUFFIX)

    def _upload_dir(self, bucket: str, upload_id: str) -> Path:
        if not re.fullmatch(r"[0-9a-f]{32}", upload_id):
            raise UploadNotFound(f"upload {upload_id!r}: not an upload id")
        return self._root / _MULTIPART_DIR / bucket / upload_id

    def _open_upload(self, bucket: str, key: str, upload_id: str) -> dict[str, Any]:
        folder = self._upload_dir(bucket, upload_id)
        try:
            upload: dict[str, Any] = json.loads((folder / _UPLOAD_FILE).read_text())
        except FileNotFoundError as exc:
            raise UploadNotFound(
                f"upload {upload_id} of {bucket}/{key}: no such upload"
            ) from exc
        if upload["key"] != key:
            raise UploadNotFound(
                f"upload {upload_id}: belongs to key {upload['key']!r}, not {key!r}"
            )
        return upload

    @staticmethod
    def _verify(what: str, data: bytes, checksum: BodyChecksum) -> str:
        md5 = hashlib.md5(data).hexdigest()
        if md5 != checksum.md5_hex:
            raise IntegrityError(f"{what}: Content-MD5 {checksum.md5_hex}, got {md5}")
        if checksum.flexible_b64 is not None:
            actual = BodyChecksum.of(data, checksum.mode).flexible_b64
            if actual != checksum.flexible_b64:
                raise IntegrityError(
                    f"{what}: {checksum.mode} checksum {checksum.flexible_b64}, "
                    f"got {actual}"
                )
        return md5

    def _commit_object(self, path: Path, write: Any, sidecar: dict[str, Any]) -> None:
        """Replace the object at ``path`` durably, sidecar removed first."""
        path.parent.mkdir(parents=True, exist_ok=True)
        meta = self._sidecar(path)
        if meta.exists():
            meta.unlink()
            fsync_dir(path.parent)
        write(path)
        atomic_write_bytes(meta, json.dumps(sidecar, sort_keys=True).encode())

    # -- ObjectStore --------------------------------------------------------

    def ensure_bucket(self, bucket: str) -> None:
        """Create ``bucket`` if it does not exist."""
        folder = self._bucket_dir(bucket, must_exist=False)
        with _mapped(f"create bucket {bucket}"):
            folder.mkdir(exist_ok=True)
            fsync_dir(self._root)

    def head_object(self, bucket: str, key: str) -> ObjectInfo | None:
        """Return the object's size, ETag and metadata, or None if absent."""
        path = self._object_path(bucket, key)
        with _mapped(f"head {bucket}/{key}"):
            try:
                size_bytes = path.stat().st_size
            except FileNotFoundError:
                return None
            try:
                sidecar = json.loads(self._sidecar(path).read_text())
            except FileNotFoundError:
                sidecar = {}
        return ObjectInfo(
            bucket=bucket,
            key=key,
            size_bytes=size_bytes,
            etag=str(sidecar.get("etag", "")),
            metadata=dict(sidecar.get("metadata", {})),
            content_type=sidecar.get("content_type"),
        )

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
        """Store ``data`` under ``key``; return the ETag (MD5 hex)."""
        path = self._object_path(bucket, key)
        etag = self._verify(f"put {bucket}/{key}", data, checksum)
        with _mapped(f"put {bucket}/{key}"):
            self._commit_object(
                path,
                lambda target: atomic_write_bytes(target, data),
                {
                    "etag": etag,
                    "metadata": dict(metadata),
                    "content_type": content_type,
                },
            )
        return etag

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
        self._object_path(bucket, key)
        upload_id = secrets.token_hex(16)
        folder = self._upload_dir(bucket, upload_id)
        with _mapped(f"create upload {bucket}/{key}"):
            folder.mkdir(parents=True)
            upload = {
                "key": key,
                "metadata": dict(metadata),
                "content_type": content_type,
                "checksum_mode": checksum_mode.value,
                "initiated_epoch_s": time.time(),
            }
            atomic_write_bytes(folder / _UPLOAD_FILE, json.dumps(upload).encode())
            fsync_dir(folder.parent)
        return upload_id

    def upload_part(
        self,
        bucket: str,
        key: str,
        upload_id: str,
        part_number: int,
        data: bytes,
        checksum: BodyChecksum,
    ) -> str:
        """Store one part; return its ETag (MD5 hex)."""
        self._open_upload(bucket, key, upload_id)
        if not 1 <= part_number <= 10_000:
            raise InvalidObjectKey(f"part number {part_number}: expected 1-10000")
        what = f"upload {upload_id} part {part_number} of {bucket}/{key}"
        etag = self._verify(what, data, checksum)
        folder = self._upload_dir(bucket, upload_id)
        with _mapped(what):
            atomic_write_bytes(folder / f"part-{part_number:05d}", data)
            record = {
                "etag": etag,
                "size_bytes": len(data),
                "checksum_b64": checksum.flexible_b64,
                "checksum_mode": checksum.mode.value,
            }
            atomic_write_bytes(
                folder / f"part-{part_number:05d}.json", json.dumps(record).encode()
            )
        return etag

    def list_parts(self, bucket: str, key: str, upload_id: str) -> list[UploadedPart]:
        """Return the parts stored for an upload, by part number."""
        self._open_upload(bucket, key, upload_id)
        folder = self._upload_dir(bucket, upload_id)
        parts = []
        with _mapped(f"list parts of upload {upload_id}"):
            for meta in sorted(folder.glob("part-*.json")):
                record = json.loads(meta.read_text())
                parts.append(
                    UploadedPart(
                        part_number=int(meta.name[5:10]),
                        etag=record["etag"],
                        size_bytes=record["size_bytes"],
                        checksum_b64=record["checksum_b64"],
                        checksum_mode=ChecksumMode(record["checksum_mode"]),
                    )
                )
        return parts

    def complete_multipart_upload(
        self, bucket: str, key: str, upload_id: str, parts: Sequence[UploadedPart]
    ) -> str:
        """Concatenate ``parts`` into the object; return the multipart ETag."""
        upload = self._open_upload(bucket, key, upload_id)
        what = f"complete upload {upload_id} of {bucket}/{key}"
        stored = {
            part.part_number: part for part in self.list_parts(bucket, key, upload_id)
        }
        numbers = [part.part_number for part in parts]
        if not parts or numbers != sorted(set(numbers)):
            raise StorageError(f"{what}: parts must be given once each, ascending")
        for index, part in enumerate(parts):
            have = stored.get(part.part_number)
            if have is None or have.etag.strip('"') != part.etag.strip('"'):
                raise IntegrityError(
                    f"{what}: part {part.part_number} ETag {part.etag} does not "
                    f"match the stored {have.etag if have else 'nothing'}"
                )
            if index < len(parts) - 1 and have.size_bytes < MIN_PART_SIZE_BYTES:
                raise StorageError(
                    f"{what}: part {part.part_number} has {have.size_bytes} bytes, "
                    f"every part but the last needs {MIN_PART_SIZE_BYTES}"
                )
        folder = self._upload_dir(bucket, upload_id)
        etag = multipart_etag([stored[n].etag.strip('"') for n in numbers])

        def assemble(target: Path) -> None:
            tmp = temp_path_for(target)
            try:
                with open(tmp, "wb") as out:
                    for number in numbers:
                        with open(folder / f"part-{number:05d}", "rb") as part_file:
                            shutil.copyfileobj(part_file, out)
                    out.flush()
                    os.fsync(out.fileno())
                os.replace(tmp, target)
            except BaseException:
                tmp.unlink(missing_ok=True)
                raise
            fsync_dir(target.parent)

        path = self._object_path(bucket, key)
        sidecar = {
            "etag": etag,
            "metadata": upload["metadata"],
            "content_type": upload["content_type"],
        }
        with _mapped(what):
            self._commit_object(path, assemble, sidecar)
            shutil.rmtree(folder)
            fsync_dir(folder.parent)
        return etag

    def abort_multipart_upload(self, bucket: str, key: str, upload_id: str) -> None:
        """Drop an upload and its parts; an unknown upload is not an error."""
        try:
            self._open_upload(bucket, key, upload_id)
        except UploadNotFound:
            return
        folder = self._upload_dir(bucket, upload_id)
        with _mapped(f"abort upload {upload_id} of {bucket}/{key}"):
            shutil.rmtree(folder)
            fsync_dir(folder.parent)

    def list_multipart_uploads(
        self, bucket: str, prefix: str = ""
    ) -> list[MultipartUploadInfo]:
        """Return the open uploads whose key starts with ``prefix``."""
        self._bucket_dir(bucket)
        found = []
        with _mapped(f"list uploads of {bucket}"):
            for upload_file in (self._root / _MULTIPART_DIR / bucket).glob(
                f"*/{_UPLOAD_FILE}"
            ):
                upload = json.loads(upload_file.read_text())
                if upload["key"].startswith(prefix):
                    found.append(
                        MultipartUploadInfo(
                            bucket=bucket,
                            key=upload["key"],
                            upload_id=upload_file.parent.name,
                            initiated_epoch_s=float(upload["initiated_epoch_s"]),
                        )
                    )
        return sorted(found, key=lambda info: (info.key, info.initiated_epoch_s))

    def get_object(self, bucket: str, key: str) -> bytes:
        """Return an object's bytes."""
        path = self._object_path(bucket, key)
        with _mapped(f"get {bucket}/{key}"):
            return path.read_bytes()

    def download_file(self, bucket: str, key: str, target: Path) -> None:
        """Copy an object's bytes to ``target``."""
        path = self._object_path(bucket, key)
        with _mapped(f"download {bucket}/{key}"):
            atomic_copy(path, Path(target))

    def list_objects(self, bucket: str, prefix: str = "") -> list[ObjectSummary]:
        """Return the objects whose key starts with ``prefix``, sorted by key."""
        folder = self._bucket_dir(bucket)
        found = []
        with _mapped(f"list {bucket}"):
            for current, _dirs, files in os.walk(folder):
                for name in files:
                    path = Path(current) / name
                    if name.endswith(META_SUFFIX) or is_temp_file(path):
                        continue
                    key = path.relative_to(folder).as_posix()
                    if key.startswith(prefix):
                        info = self.head_object(bucket, key)
                        if info is not None:
                            found.append(ObjectSummary(key, info.size_bytes, info.etag))
        return sorted(found, key=lambda summary: summary.key)

    def replace_metadata(
        self, bucket: str, key: str, metadata: Mapping[str, str]
    ) -> None:
        """Replace an object's user metadata in its sidecar; bytes stay as they are.

        Raises:
            ObjectNotFound: no such object, or it has no sidecar.
        """
        path = self._object_path(bucket, key)
        meta = self._sidecar(path)
        with _mapped(f"replace metadata of {bucket}/{key}"):
            sidecar = json.loads(meta.read_text())
            if not path.exists():
                raise ObjectNotFound(f"replace metadata of {bucket}/{key}: no object")
            sidecar["metadata"] = dict(metadata)
            atomic_write_bytes(meta, json.dumps(sidecar, sort_keys=True).encode())

    def delete_object(self, bucket: str, key: str) -> None:
        """Delete an object and its sidecar; a missing object is fine."""
        path = self._object_path(bucket, key)
        with _mapped(f"delete {bucket}/{key}"):
            self._sidecar(path).unlink(missing_ok=True)
            path.unlink(missing_ok=True)
            fsync_dir(path.parent)
