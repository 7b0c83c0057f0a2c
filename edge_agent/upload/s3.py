"""Object store over the S3 API (boto3): AWS, SeaweedFS, MinIO, Aruba, ...

The client is configured for stores that are not AWS:
``request_checksum_calculation`` and ``response_checksum_validation`` are
``when_required``, so botocore adds no CRC trailers some stores reject; body
integrity comes from the checksums this module is given (Content-MD5 in the
default mode, or an explicit flexible checksum). Path-style addressing is
the default because most self-hosted stores have no wildcard DNS. With
``server_side_encryption`` (``"AES256"``: SSE-S3, or ``"aws:kms"``) every
put and multipart upload asks the store to encrypt the object at rest;
SeaweedFS does so once its S3 gateway has a key-encryption key
(``WEED_S3_SSE_KEK`` or ``s3.sse.kek`` in security.toml). Every
botocore error is mapped into :mod:`edge_agent.upload.errors` by
:func:`map_boto_error`, the one place that knows botocore's error shapes.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    HTTPClientError,
    NoCredentialsError,
    PartialCredentialsError,
)
from botocore.exceptions import (
    ConnectionError as BotoConnectionError,
)

from edge_agent.custody.durable import fsync_dir, temp_path_for

from .errors import (
    BucketNotFound,
    IntegrityError,
    ObjectNotFound,
    ObjectStoreUnavailable,
    StorageError,
    StoreAccessDenied,
    UploadNotFound,
)
from .store import (
    BodyChecksum,
    ChecksumMode,
    MultipartUploadInfo,
    ObjectInfo,
    ObjectSummary,
    UploadedPart,
)

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

__all__ = ["S3Store", "map_boto_error"]

_LOGGER = logging.getLogger(__name__)

# Connecting should be quick even on a poor uplink; a longer wait means the
# endpoint is unreachable and the upload should be retried later.
CONNECT_TIMEOUT_S = 10.0
# Reading a response may take a while: the store hashes a whole 8 MiB part
# before it answers.
READ_TIMEOUT_S = 60.0
# botocore retries (standard mode, with backoff) before an error surfaces;
# the uploader's own resume covers longer outages.
MAX_ATTEMPTS = 4
# Listings are paginated; a bound keeps a misbehaving store from looping us.
MAX_LIST_PAGES = 10_000
# Chunk of a streamed download.
DOWNLOAD_CHUNK_BYTES = 1024 * 1024

_UNAVAILABLE_CODES = {
    "InternalError",
    "ServiceUnavailable",
    "SlowDown",
    "RequestTimeout",
    "RequestTimeTooSkewed",
}
_DENIED_CODES = {
    "AccessDenied",
    "AllAccessDisabled",
    "ExpiredToken",
    "InvalidAccessKeyId",
    "InvalidToken",
    "SignatureDoesNotMatch",
    "403",
}
_INTEGRITY_CODES = {
    "BadDigest",
    "InvalidDigest",
    "InvalidPart",
    "XAmzContentSHA256Mismatch",
    "XAmzContentChecksumMismatch",
}
_FLEXIBLE_PARAM = {
    ChecksumMode.SHA256: "ChecksumSHA256",
    ChecksumMode.CRC32: "ChecksumCRC32",
}
_FLEXIBLE_ALGORITHM = {ChecksumMode.SHA256: "SHA256", ChecksumMode.CRC32: "CRC32"}


def map_boto_error(exc: Exception, what: str) -> StorageError:
    """Translate a boto3/botocore error about ``what`` into a StorageError."""
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code", ""))
        message = error.get("Message") or code
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))
        text = f"{what}: {code} ({message})"
        if code == "NoSuchBucket":
            return BucketNotFound(text)
        if code == "NoSuchUpload":
            return UploadNotFound(text)
        if code in ("NoSuchKey", "NotFound", "404"):
            return ObjectNotFound(text)
        if code in _DENIED_CODES:
            return StoreAccessDenied(f"{text}; check the store credentials and policy")
        if code in _INTEGRITY_CODES:
            return IntegrityError(text)
        if code in _UNAVAILABLE_CODES or status >= 500:
            return ObjectStoreUnavailable(f"{text}; retry later")
        return StorageError(text)
    if isinstance(exc, NoCredentialsError | PartialCredentialsError):
        return StoreAccessDenied(f"{what}: {exc}; configure the store credentials")
    if isinstance(exc, BotoConnectionError | HTTPClientError):
        return ObjectStoreUnavailable(f"{what}: {exc}; retry when the uplink works")
    return StorageError(f"{what}: {exc}")


@contextmanager
def _mapped(what: str) -> Iterator[None]:
    try:
        yield
    except (BotoCoreError, ClientError) as exc:
        raise map_boto_error(exc, what) from exc


class S3Store:
    """An S3-compatible object store reached through a boto3 client."""

    def __init__(
        self,
        client: S3Client,
        *,
        description: str = "s3",
        server_side_encryption: str | None = None,
    ) -> None:
        """Wrap an existing boto3 S3 client; prefer :meth:`connect`."""
        self._client = client
        self._description = description
        self._sse: dict[str, Any] = (
            {"ServerSideEncryption": server_side_encryption}
            if server_side_encryption
            else {}
        )

    @classmethod
    def connect(
        cls,
        endpoint_url: str | None,
        *,
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
        region: str = "us-east-1",
        addressing_style: Literal["auto", "virtual", "path"] = "path",
        connect_timeout_s: float = CONNECT_TIMEOUT_S,
        read_timeout_s: float = READ_TIMEOUT_S,
        max_attempts: int = MAX_ATTEMPTS,
        server_side_encryption: str | None = None,
    ) -> S3Store:
        """Build a client for ``endpoint_url`` (None: AWS's own endpoints).

        Credentials left None come from boto3's usual chain (environment,
        shared files, instance role). ``server_side_encryption`` is sent
        with every put and multipart upload (``"AES256"`` for SSE-S3).
        """
        config = Config(
            region_name=region,
            connect_timeout=connect_timeout_s,
            read_timeout=read_timeout_s,
            retries={"max_attempts": max_attempts, "mode": "standard"},
            s3={"addressing_style": addressing_style},
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        )
        client: S3Client = boto3.client(
            "s3",
            endpoint_url=endpoint_url,
            aws_access_key_id=access_key_id,
            aws_secret_access_key=secret_access_key,
            config=config,
        )
        return cls(
            client,
            description=f"s3:{endpoint_url or 'aws'}",
            server_side_encryption=server_side_encryption,
        )

    @property
    def name(self) -> str:
        """Return a short description for log lines."""
        return self._description

    @property
    def client(self) -> S3Client:
        """Return the underlying boto3 client."""
        return self._client

    def ensure_bucket(self, bucket: str) -> None:
        """Create ``bucket`` if it does not exist."""
        with _mapped(f"create bucket {bucket}"):
            try:
                self._client.head_bucket(Bucket=bucket)
                return
            except ClientError as exc:
                code = str(exc.response.get("Error", {}).get("Code", ""))
                if code not in ("404", "NoSuchBucket", "NotFound"):
                    raise
            region = self._client.meta.region_name
            extra: dict[str, Any] = {}
            if region and region != "us-east-1":
                extra["CreateBucketConfiguration"] = {"LocationConstraint": region}
            try:
                self._client.create_bucket(Bucket=bucket, **extra)
            except ClientError as exc:
                code = str(exc.response.get("Error", {}).get("Code", ""))
                if code != "BucketAlreadyOwnedByYou":
                    raise

    def head_object(self, bucket: str, key: str) -> ObjectInfo | None:
        """Return the object's size, ETag and metadata, or None if absent."""
        with _mapped(f"head {bucket}/{key}"):
            try:
                response = self._client.head_object(Bucket=bucket, Key=key)
            except ClientError as exc:
                code = str(exc.response.get("Error", {}).get("Code", ""))
                if code in ("404", "NoSuchKey", "NotFound"):
                    return None
                raise
        return ObjectInfo(
            bucket=bucket,
            key=key,
            size_bytes=int(response["ContentLength"]),
            etag=response.get("ETag", "").strip('"'),
            metadata={k.lower(): v for k, v in response.get("Metadata", {}).items()},
            content_type=response.get("ContentType"),
        )

    @staticmethod
    def _checksum_args(checksum: BodyChecksum) -> dict[str, str]:
        if checksum.mode is ChecksumMode.MD5 or checksum.flexible_b64 is None:
            return {"ContentMD5": checksum.md5_b64}
        return {_FLEXIBLE_PARAM[checksum.mode]: checksum.flexible_b64}

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
        extra: dict[str, Any] = {**self._checksum_args(checksum), **self._sse}
        if content_type:
            extra["ContentType"] = content_type
        with _mapped(f"put {bucket}/{key}"):
            response = self._client.put_object(
                Bucket=bucket, Key=key, Body=data, Metadata=dict(metadata), **extra
            )
        return response.get("ETag", "").strip('"')

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
        extra: dict[str, Any] = dict(self._sse)
        if checksum_mode in _FLEXIBLE_ALGORITHM:
            extra["ChecksumAlgorithm"] = _FLEXIBLE_ALGORITHM[checksum_mode]
        if content_type:
            extra["ContentType"] = content_type
        with _mapped(f"create upload {bucket}/{key}"):
            response = self._client.create_multipart_upload(
                Bucket=bucket, Key=key, Metadata=dict(metadata), **extra
            )
        return response["UploadId"]

    def upload_part(
        self,
        bucket: str,
        key: str,
        upload_id: str,
        part_number: int,
        data: bytes,
        checksum: BodyChecksum,
    ) -> str:
        """Store one part; return its ETag."""
        what = f"upload {upload_id[:16]} part {part_number} of {bucket}/{key}"
        with _mapped(what):
            response = self._client.upload_part(
                Bucket=bucket,
                Key=key,
                UploadId=upload_id,
                PartNumber=part_number,
                Body=data,
                **self._checksum_args(checksum),  # type: ignore[arg-type]
            )
        return response["ETag"].strip('"')

    def list_parts(self, bucket: str, key: str, upload_id: str) -> list[UploadedPart]:
        """Return the parts the store holds for an upload, by part number."""
        parts: list[UploadedPart] = []
        marker = 0
        with _mapped(f"list parts of upload {upload_id[:16]} of {bucket}/{key}"):
            for _page in range(MAX_LIST_PAGES):
                response = self._client.list_parts(
                    Bucket=bucket, Key=key, UploadId=upload_id, PartNumberMarker=marker
                )
                for part in response.get("Parts", []):
                    mode, value = ChecksumMode.MD5, None
                    for flexible_mode, param in _FLEXIBLE_PARAM.items():
                        if part.get(param):
                            mode, value = flexible_mode, str(part.get(param))
                    parts.append(
                        UploadedPart(
                            part_number=int(part["PartNumber"]),
                            etag=part["ETag"].strip('"'),
                            size_bytes=int(part["Size"]),
                            checksum_b64=value,
                            checksum_mode=mode,
                        )
                    )
                if not response.get("IsTruncated"):
                    break
                marker = int(response.get("NextPartNumberMarker", 0))
        return sorted(parts, key=lambda part: part.part_number)

    def complete_multipart_upload(
        self, bucket: str, key: str, upload_id: str, parts: Sequence[UploadedPart]
    ) -> str:
        """Assemble the object from ``parts``; return its ETag."""
        entries: list[dict[str, Any]] = []
        for part in parts:
            entry: dict[str, Any] = {"PartNumber": part.part_number, "ETag": part.etag}
            if part.checksum_b64 and part.checksum_mode in _FLEXIBLE_PARAM:
                entry[_FLEXIBLE_PARAM[part.checksum_mode]] = part.checksum_b64
            entries.append(entry)
        with _mapped(f"complete upload {upload_id[:16]} of {bucket}/{key}"):
            response = self._client.complete_multipart_upload(
                Bucket=bucket,
                Key=key,
                UploadId=upload_id,
                MultipartUpload={"Parts": entries},  # type: ignore[typeddict-item]
            )
        return response.get("ETag", "").strip('"')

    def abort_multipart_upload(self, bucket: str, key: str, upload_id: str) -> None:
        """Drop an upload and its parts; an unknown upload id is not an error."""
        try:
            with _mapped(f"abort upload {upload_id[:16]} of {bucket}/{key}"):
                self._client.abort_multipart_upload(
                    Bucket=bucket, Key=key, UploadId=upload_id
                )
        except UploadNotFound:
            return

    def list_multipart_uploads(
        self, bucket: str, prefix: str = ""
    ) -> list[MultipartUploadInfo]:
        """Return the open multipart uploads whose key starts with ``prefix``."""
        found: list[MultipartUploadInfo] = []
        markers: dict[str, str] = {}
        with _mapped(f"list uploads of {bucket}"):
            for _page in range(MAX_LIST_PAGES):
                response = self._client.list_multipart_uploads(
                    Bucket=bucket,
                    Prefix=prefix,
                    **markers,  # type: ignore[arg-type]
                )
                for upload in response.get("Uploads", []):
                    initiated = upload.get("Initiated")
                    found.append(
                        MultipartUploadInfo(
                            bucket=bucket,
                            key=upload["Key"],
                            upload_id=upload["UploadId"],
                            initiated_epoch_s=initiated.timestamp()
                            if initiated
                            else 0.0,
                        )
                    )
                if not response.get("IsTruncated"):
                    break
                markers = {
                    "KeyMarker": response.get("NextKeyMarker", ""),
                    "UploadIdMarker": response.get("NextUploadIdMarker", ""),
                }
        return found

    def get_object(self, bucket: str, key: str) -> bytes:
        """Return an object's bytes (for small objects)."""
        with _mapped(f"get {bucket}/{key}"):
            response = self._client.get_object(Bucket=bucket, Key=key)
            return response["Body"].read()

    def download_file(self, bucket: str, key: str, target: Path) -> None:
        """Stream an object into ``target`` (atomically, fsynced)."""
        target = Path(target)
        tmp = temp_path_for(target)
        try:
            with _mapped(f"download {bucket}/{key}"), open(tmp, "wb") as out:
                response = self._client.get_object(Bucket=bucket, Key=key)
                for chunk in response["Body"].iter_chunks(DOWNLOAD_CHUNK_BYTES):
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, target)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        fsync_dir(target.parent)

    def list_objects(self, bucket: str, prefix: str = "") -> list[ObjectSummary]:
        """Return the objects whose key starts with ``prefix``, sorted by key."""
        found: list[ObjectSummary] = []
        with _mapped(f"list {bucket}/{prefix}"):
            paginator = self._client.get_paginator("list_objects_v2")
            for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
                for item in page.get("Contents", []):
                    found.append(
                        ObjectSummary(
                            key=item["Key"],
                            size_bytes=int(item["Size"]),
                            etag=item.get("ETag", "").strip('"'),
                        )
                    )
        return sorted(found, key=lambda summary: summary.key)

    def delete_object(self, bucket: str, key: str) -> None:
        """Delete an object; a missing object is not an error."""
        with _mapped(f"delete {bucket}/{key}"):
            self._client.delete_object(Bucket=bucket, Key=key)
