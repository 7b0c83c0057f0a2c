"""Object store on Azure Blob Storage (azure-storage-blob): Azure, Azurite.

A bucket is a container and a key a blob name. The S3 model the uploader
relies on maps onto block blobs like this:

* ``put_object`` is one Put Blob with the caller's MD5 as the transactional
  Content-MD5, so the service refuses a body that does not match it.
* A multipart upload is a set of staged (uncommitted) blocks plus a small
  *upload record*: an empty blob ``{bucket}/{upload_id}`` in the uploads
  container (``UPLOADS_CONTAINER``) whose metadata holds the key, the
  object's metadata, content type and start time. Azure has no upload ids,
  so the record is what makes an upload listable, resumable and abortable.
* A part is a block whose id encodes the upload id, the part number and the
  part's MD5 (``{upload_id:16}{part:05d}{md5:32}``, 53 characters of the 64
  Azure allows). ``list_parts`` reads the blob's uncommitted block list, so
  it reports what the service really holds; completing picks the blocks
  whose MD5 matches the ETags given, which refuses a wrong ETag as S3 does.
* ETags are S3's: the body MD5 for a single put and the MD5 of the part
  MD5s with a ``-N`` suffix for a multipart object, kept in the blob's
  metadata (``s_etag``) because Azure's own ETag is an opaque version tag.
* Metadata keys must be C# identifiers in Azure, and S3-style keys contain
  dashes, so each user key is stored as ``m_`` plus the key with every
  character outside ``a-z0-9`` written as ``_`` and two hex digits
  (``log-id`` -> ``m_log_2did``); the store's own keys start with ``s_``.

Known limits: aborting an upload drops its record at once, but Azure keeps
the staged blocks until the blob is next committed or for seven days; two
uploads of the same key at once share the blob's uncommitted block list, so
completing one discards the other's blocks (the uploader then sends them
again). Azure encrypts every blob at rest with service-managed keys; Azurite
stores plaintext, so use the envelope wrapper
(:mod:`edge_agent.upload.envelope`) where the files themselves must be safe.
Every Azure SDK error is mapped into :mod:`edge_agent.upload.errors` by
:func:`map_azure_error`.
"""

from __future__ import annotations

import base64
import datetime as dt
import logging
import os
import re
import secrets
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

from azure.core import MatchConditions
from azure.core.exceptions import (
    AzureError,
    ClientAuthenticationError,
    HttpResponseError,
    ResourceExistsError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.storage.blob import (
    BlobBlock,
    BlobSasPermissions,
    BlobServiceClient,
    ContainerClient,
    ContentSettings,
    generate_blob_sas,
)

from edge_agent.custody.durable import fsync_dir, temp_path_for

from .errors import (
    BucketNotFound,
    IntegrityError,
    InvalidObjectKey,
    ObjectNotFound,
    ObjectStoreUnavailable,
    StorageError,
    StoreAccessDenied,
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

__all__ = [
    "UPLOADS_CONTAINER",
    "AzureBlobStore",
    "decode_metadata",
    "encode_metadata",
    "map_azure_error",
]

_LOGGER = logging.getLogger(__name__)

# Container of the multipart upload records (see the module docstring).
UPLOADS_CONTAINER = "suitlink-multipart"
# Connecting should be quick even on a poor uplink; see S3Store for the why.
CONNECT_TIMEOUT_S = 10.0
# The service checks a whole staged block's MD5 before it answers.
READ_TIMEOUT_S = 60.0
# SDK retries (exponential backoff) before an error surfaces; the
# uploader's own resume covers longer outages.
RETRY_TOTAL = 3
# Largest single Put Blob (Azure's limit since API version 2019-12-12); the
# SDK would otherwise split larger bodies into blocks behind our back.
MAX_PUT_BYTES = 5000 * 1024 * 1024
# Chunk of a streamed download.
DOWNLOAD_CHUNK_BYTES = 1024 * 1024
# SAS links start a little in the past: the service's clock may run behind.
SAS_CLOCK_SKEW_S = 300

_UPLOAD_ID_RE = re.compile(r"[0-9a-f]{16}")
_BLOCK_ID_RE = re.compile(r"([0-9a-f]{16})([0-9]{5})([0-9a-f]{32})")
_CONTAINER_RE = re.compile(r"[a-z0-9](?:[a-z0-9]|-(?=[a-z0-9])){2,62}")
_USER_PREFIX = "m_"
_ETAG_KEY = "s_etag"
_RECORD_KEY = "s_key"
_RECORD_CONTENT_TYPE = "s_ctype"
_RECORD_MODE = "s_mode"
_RECORD_INITIATED = "s_init"
_LITERAL = frozenset("abcdefghijklmnopqrstuvwxyz0123456789")

_NOT_FOUND = {"BlobNotFound", "ResourceNotFound"}
_DENIED = {
    "AuthenticationFailed",
    "AuthorizationFailure",
    "AuthorizationPermissionMismatch",
    "AuthorizationResourceTypeMismatch",
    "InsufficientAccountPermissions",
    "AccountIsDisabled",
}
_INTEGRITY = {"Md5Mismatch", "InvalidMd5", "Crc64Mismatch", "InvalidBlockList"}
_INVALID = {"InvalidResourceName", "InvalidUri", "OutOfRangeInput"}
_UNAVAILABLE = {"ServerBusy", "InternalError", "OperationTimedOut"}


def map_azure_error(exc: Exception, what: str) -> StorageError:
    """Translate an Azure SDK error about ``what`` into a StorageError."""
    if isinstance(exc, ClientAuthenticationError):
        return StoreAccessDenied(f"{what}: {exc.message}; check the account key")
    if isinstance(exc, HttpResponseError):
        # The SDK gives a StorageErrorCode (a str enum) or the raw header text.
        raw = getattr(exc, "error_code", None)
        code = str(getattr(raw, "value", raw) or "")
        status = exc.status_code or 0
        text = f"{what}: {code or status} ({exc.reason or 'no reason'})"
        if code == "ContainerNotFound":
            return BucketNotFound(text)
        if code in _NOT_FOUND or (status == 404 and not code):
            return ObjectNotFound(text)
        if code in _DENIED or status == 403:
            return StoreAccessDenied(f"{text}; check the account key and its rights")
        if code in _INTEGRITY:
            return IntegrityError(text)
        if code in _INVALID:
            return InvalidObjectKey(text)
        if code in _UNAVAILABLE or status >= 500:
            return ObjectStoreUnavailable(f"{text}; retry later")
        return StorageError(text)
    if isinstance(exc, ServiceRequestError | ServiceResponseError):
        return ObjectStoreUnavailable(f"{what}: {exc}; retry when the uplink works")
    return StorageError(f"{what}: {exc}")


@contextmanager
def _mapped(what: str) -> Iterator[None]:
    try:
        yield
    except AzureError as exc:
        raise map_azure_error(exc, what) from exc


def _encode_name(key: str) -> str:
    return _USER_PREFIX + "".join(
        char if char in _LITERAL else "".join(f"_{b:02x}" for b in char.encode())
        for char in key
    )


def _decode_name(name: str) -> str:
    body = name[len(_USER_PREFIX) :]
    out = bytearray()
    index = 0
    while index < len(body):
        if body[index] == "_":
            out.append(int(body[index + 1 : index + 3], 16))
            index += 3
        else:
            out += body[index].encode()
            index += 1
    return out.decode()


def encode_metadata(metadata: Mapping[str, str]) -> dict[str, str]:
    """Return user metadata as Azure metadata (identifier-safe names)."""
    return {_encode_name(key): value for key, value in metadata.items()}


def decode_metadata(metadata: Mapping[str, str]) -> dict[str, str]:
    """Return the user metadata held in Azure metadata (store keys dropped)."""
    return {
        _decode_name(name.lower()): value
        for name, value in metadata.items()
        if name.lower().startswith(_USER_PREFIX)
    }


def _check_flexible(what: str, data: bytes, checksum: BodyChecksum) -> bytes:
    """Verify a flexible checksum here (Azure has none); return the MD5 bytes."""
    if checksum.flexible_b64 is not None:
        actual = BodyChecksum.of(data, checksum.mode).flexible_b64
        if actual != checksum.flexible_b64:
            raise IntegrityError(
                f"{what}: {checksum.mode} checksum {checksum.flexible_b64}, "
                f"got {actual}"
            )
    return base64.b64decode(checksum.md5_b64)


class AzureBlobStore:
    """Containers of block blobs reached through a BlobServiceClient."""

    def __init__(
        self,
        service: BlobServiceClient,
        *,
        uploads_container: str = UPLOADS_CONTAINER,
        description: str | None = None,
    ) -> None:
        """Wrap an existing client; prefer :meth:`connect`."""
        self._service = service
        self._uploads_container = uploads_container
        self._description = description or f"azure:{service.url}"

    @classmethod
    def connect(
        cls,
        *,
        connection_string: str | None = None,
        account_url: str | None = None,
        account_name: str | None = None,
        account_key: str | None = None,
        uploads_container: str = UPLOADS_CONTAINER,
        connect_timeout_s: float = CONNECT_TIMEOUT_S,
        read_timeout_s: float = READ_TIMEOUT_S,
        retry_total: int = RETRY_TOTAL,
    ) -> AzureBlobStore:
        """Build a client from a connection string, or an account and its key.

        ``account_url`` defaults to ``https://{account_name}.blob.core.windows.net``.
        No request is made here.

        Raises:
            StoreAccessDenied: neither a connection string nor an account
                name and key were given, or the connection string is malformed.
        """
        options: dict[str, Any] = {
            "connection_timeout": connect_timeout_s,
            "read_timeout": read_timeout_s,
            "retry_total": retry_total,
            "max_single_put_size": MAX_PUT_BYTES,
        }
        try:
            if connection_string:
                service = BlobServiceClient.from_connection_string(
                    connection_string, **options
                )
            elif account_name and account_key:
                url = account_url or f"https://{account_name}.blob.core.windows.net"
                service = BlobServiceClient(
                    url,
                    credential={
                        "account_name": account_name,
                        "account_key": account_key,
                    },
                    **options,
                )
            else:
                raise StoreAccessDenied(
                    "azure store: set a connection string, or an account name and "
                    "account key"
                )
        except ValueError as exc:
            raise StoreAccessDenied(f"azure store: {exc}") from exc
        return cls(service, uploads_container=uploads_container)

    @property
    def name(self) -> str:
        """Return a short description for log lines."""
        return self._description

    @property
    def service(self) -> BlobServiceClient:
        """Return the underlying service client."""
        return self._service

    # -- helpers --------------------------------------------------------------

    def _container(self, bucket: str) -> ContainerClient:
        if not _CONTAINER_RE.fullmatch(bucket):
            raise InvalidObjectKey(
                f"bucket {bucket!r}: an Azure container name needs 3-63 characters "
                "of a-z 0-9 and single inner dashes"
            )
        return self._service.get_container_client(bucket)

    @staticmethod
    def _check_key(key: str) -> None:
        if not key or len(key) > 1024 or key.endswith(("/", ".")) or "\\" in key:
            raise InvalidObjectKey(
                f"key {key!r}: Azure blob names are 1-1024 characters, without "
                "backslashes, not ending in '/' or '.'"
            )

    def _require_container(self, bucket: str, what: str) -> ContainerClient:
        container = self._container(bucket)
        with _mapped(what):
            container.get_container_properties()
        return container

    def _record(self, bucket: str, key: str, upload_id: str) -> dict[str, str]:
        """Return the upload record's metadata, or raise UploadNotFound."""
        what = f"upload {upload_id} of {bucket}/{key}"
        if not _UPLOAD_ID_RE.fullmatch(upload_id):
            raise UploadNotFound(f"{what}: not an upload id")
        client = self._service.get_blob_client(
            self._uploads_container, f"{bucket}/{upload_id}"
        )
        try:
            with _mapped(what):
                props = client.get_blob_properties()
        except ObjectNotFound as exc:  # the record or its container is gone
            raise UploadNotFound(f"{what}: no such upload") from exc
        record = dict(props.metadata)
        if unquote(record.get(_RECORD_KEY, "")) != key:
            raise UploadNotFound(f"{what}: the upload belongs to another key")
        return record

    def _blocks(
        self, bucket: str, key: str, what: str
    ) -> tuple[list[BlobBlock], list[BlobBlock]]:
        client = self._container(bucket).get_blob_client(key)
        try:
            with _mapped(what):
                return client.get_block_list("all")
        except BucketNotFound:
            raise
        except ObjectNotFound:
            return [], []

    # -- ObjectStore --------------------------------------------------------

    def ensure_bucket(self, bucket: str) -> None:
        """Create ``bucket`` (and the uploads container) if missing."""
        for name in (bucket, self._uploads_container):
            container = self._container(name)
            with _mapped(f"create bucket {name}"), suppress(ResourceExistsError):
                container.create_container()

    def head_object(self, bucket: str, key: str) -> ObjectInfo | None:
        """Return the object's size, ETag and metadata, or None if absent."""
        self._check_key(key)
        client = self._container(bucket).get_blob_client(key)
        try:
            with _mapped(f"head {bucket}/{key}"):
                props = client.get_blob_properties()
        except BucketNotFound:
            raise
        except ObjectNotFound:
            return None
        metadata = dict(props.metadata)
        etag = metadata.get(_ETAG_KEY) or (props.etag or "").strip('"')
        return ObjectInfo(
            bucket=bucket,
            key=key,
            size_bytes=int(props.size),
            etag=etag,
            metadata=decode_metadata(metadata),
            content_type=props.content_settings.content_type or None,
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
        """Store ``data`` under ``key`` in one Put Blob; return the MD5 ETag."""
        self._check_key(key)
        what = f"put {bucket}/{key}"
        if len(data) > MAX_PUT_BYTES:
            raise StorageError(
                f"{what}: {len(data)} bytes exceed one Put Blob "
                f"({MAX_PUT_BYTES}); use a multipart upload"
            )
        md5 = _check_flexible(what, data, checksum)
        etag = md5.hex()
        client = self._container(bucket).get_blob_client(key)
        with _mapped(what):
            client.upload_blob(
                data,
                length=len(data),
                overwrite=True,
                metadata={**encode_metadata(metadata), _ETAG_KEY: etag},
                content_settings=ContentSettings(
                    content_type=content_type, content_md5=bytearray(md5)
                ),
                transactional_content_md5=md5,
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
        """Write an upload record; return its upload id (16 hex digits)."""
        self._check_key(key)
        what = f"create upload {bucket}/{key}"
        self._require_container(bucket, what)
        upload_id = secrets.token_hex(8)
        record = {
            **encode_metadata(metadata),
            _RECORD_KEY: quote(key, safe="/"),
            _RECORD_CONTENT_TYPE: quote(content_type or "", safe="/"),
            _RECORD_MODE: checksum_mode.value,
            _RECORD_INITIATED: f"{time.time():.3f}",
        }
        client = self._service.get_blob_client(
            self._uploads_container, f"{bucket}/{upload_id}"
        )
        with _mapped(what):
            try:
                client.upload_blob(b"", overwrite=False, metadata=record)
            except HttpResponseError as exc:
                if not isinstance(map_azure_error(exc, what), BucketNotFound):
                    raise
                self.ensure_bucket(bucket)
                client.upload_blob(b"", overwrite=False, metadata=record)
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
        """Stage one block; return the part's ETag (MD5 hex)."""
        self._record(bucket, key, upload_id)
        if not 1 <= part_number <= 10_000:
            raise InvalidObjectKey(f"part number {part_number}: expected 1-10000")
        what = f"upload {upload_id} part {part_number} of {bucket}/{key}"
        md5 = _check_flexible(what, data, checksum)
        block_id = f"{upload_id}{part_number:05d}{md5.hex()}"
        client = self._container(bucket).get_blob_client(key)
        with _mapped(what):
            client.stage_block(
                block_id, data, length=len(data), transactional_content_md5=md5
            )
        return md5.hex()

    def list_parts(self, bucket: str, key: str, upload_id: str) -> list[UploadedPart]:
        """Return the staged blocks of an upload as parts, by part number.

        A part staged twice with different bytes shows the block Azure
        lists last.
        """
        self._record(bucket, key, upload_id)
        _committed, uncommitted = self._blocks(
            bucket, key, f"list parts of upload {upload_id} of {bucket}/{key}"
        )
        parts: dict[int, UploadedPart] = {}
        for block in uncommitted:
            match = _BLOCK_ID_RE.fullmatch(str(block.id))
            if match is None or match.group(1) != upload_id:
                continue
            number = int(match.group(2))
            parts[number] = UploadedPart(number, match.group(3), int(block.size or 0))
        return [parts[number] for number in sorted(parts)]

    def complete_multipart_upload(
        self, bucket: str, key: str, upload_id: str, parts: Sequence[UploadedPart]
    ) -> str:
        """Commit the blocks of ``parts``; return the multipart ETag."""
        record = self._record(bucket, key, upload_id)
        what = f"complete upload {upload_id} of {bucket}/{key}"
        numbers = [part.part_number for part in parts]
        if not parts or numbers != sorted(set(numbers)):
            raise StorageError(f"{what}: parts must be given once each, ascending")
        wanted = [
            f"{upload_id}{part.part_number:05d}{part.etag.strip(chr(34)).lower()}"
            for part in parts
        ]
        etag = multipart_etag([block_id[21:] for block_id in wanted])
        committed, uncommitted = self._blocks(bucket, key, what)
        staged = {str(block.id): int(block.size or 0) for block in uncommitted}
        if (
            not any(block_id in staged for block_id in wanted)
            and [str(block.id) for block in committed] == wanted
        ):
            # An earlier complete committed these blocks; its reply was lost.
            self._drop_record(bucket, upload_id, what)
            return etag
        for index, (part, block_id) in enumerate(zip(parts, wanted, strict=True)):
            size_bytes = staged.get(block_id)
            if size_bytes is None:
                raise IntegrityError(
                    f"{what}: part {part.part_number} with ETag {part.etag} is not "
                    "staged (wrong ETag, or the upload was overtaken)"
                )
            if index < len(parts) - 1 and size_bytes < MIN_PART_SIZE_BYTES:
                raise StorageError(
                    f"{what}: part {part.part_number} has {size_bytes} bytes, "
                    f"every part but the last needs {MIN_PART_SIZE_BYTES}"
                )
        metadata = {
            name: value
            for name, value in record.items()
            if name.lower().startswith(_USER_PREFIX)
        }
        content_type = unquote(record.get(_RECORD_CONTENT_TYPE, "")) or None
        client = self._container(bucket).get_blob_client(key)
        with _mapped(what):
            client.commit_block_list(
                [BlobBlock(block_id=block_id) for block_id in wanted],
                content_settings=ContentSettings(content_type=content_type),
                metadata={**metadata, _ETAG_KEY: etag},
            )
        self._drop_record(bucket, upload_id, what)
        return etag

    def _drop_record(self, bucket: str, upload_id: str, what: str) -> None:
        client = self._service.get_blob_client(
            self._uploads_container, f"{bucket}/{upload_id}"
        )
        try:
            with _mapped(what):
                client.delete_blob()
        except ObjectNotFound:
            pass

    def abort_multipart_upload(self, bucket: str, key: str, upload_id: str) -> None:
        """Drop an upload's record; an unknown upload is not an error.

        The staged blocks stay until Azure discards them (see the module
        docstring).
        """
        try:
            self._record(bucket, key, upload_id)
        except UploadNotFound:
            return
        self._drop_record(bucket, upload_id, f"abort upload {upload_id} of {key}")

    def list_multipart_uploads(
        self, bucket: str, prefix: str = ""
    ) -> list[MultipartUploadInfo]:
        """Return the open uploads whose key starts with ``prefix``."""
        what = f"list uploads of {bucket}"
        self._require_container(bucket, what)
        records = self._service.get_container_client(self._uploads_container)
        found = []
        try:
            with _mapped(what):
                for blob in records.list_blobs(
                    name_starts_with=f"{bucket}/", include=["metadata"]
                ):
                    key = unquote(blob.metadata.get(_RECORD_KEY, ""))
                    if not key.startswith(prefix):
                        continue
                    found.append(
                        MultipartUploadInfo(
                            bucket=bucket,
                            key=key,
                            upload_id=blob.name.rsplit("/", 1)[-1],
                            initiated_epoch_s=float(
                                blob.metadata.get(_RECORD_INITIATED, "0")
                            ),
                        )
                    )
        except BucketNotFound:  # no upload was ever started in this account
            return []
        return sorted(found, key=lambda info: (info.key, info.initiated_epoch_s))

    def get_object(self, bucket: str, key: str) -> bytes:
        """Return an object's bytes (for small objects)."""
        self._check_key(key)
        client = self._container(bucket).get_blob_client(key)
        with _mapped(f"get {bucket}/{key}"):
            return client.download_blob().readall()

    def download_file(self, bucket: str, key: str, target: Path) -> None:
        """Stream an object into ``target`` (atomically, fsynced)."""
        self._check_key(key)
        target = Path(target)
        client = self._container(bucket).get_blob_client(key)
        tmp = temp_path_for(target)
        try:
            with _mapped(f"download {bucket}/{key}"), open(tmp, "wb") as out:
                for chunk in client.download_blob().chunks():
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
        container = self._container(bucket)
        found = []
        with _mapped(f"list {bucket}/{prefix}"):
            for blob in container.list_blobs(
                name_starts_with=prefix or None, include=["metadata"]
            ):
                etag = (blob.metadata or {}).get(_ETAG_KEY) or blob.etag.strip('"')
                found.append(ObjectSummary(blob.name, int(blob.size), etag))
        return sorted(found, key=lambda summary: summary.key)

    def delete_object(self, bucket: str, key: str) -> None:
        """Delete an object; a missing object is not an error."""
        self._check_key(key)
        client = self._container(bucket).get_blob_client(key)
        try:
            with _mapped(f"delete {bucket}/{key}"):
                client.delete_blob(delete_snapshots="include")
        except BucketNotFound:
            raise
        except ObjectNotFound:
            pass

    # -- beyond the ObjectStore protocol --------------------------------------

    def replace_metadata(
        self, bucket: str, key: str, metadata: Mapping[str, str]
    ) -> None:
        """Replace an object's user metadata, keeping its bytes and ETag.

        Raises:
            ObjectNotFound: no such object.
            ObjectStoreUnavailable: the object changed while this ran.
        """
        self._check_key(key)
        what = f"replace metadata of {bucket}/{key}"
        client = self._container(bucket).get_blob_client(key)
        with _mapped(what):
            props = client.get_blob_properties()
            etag = dict(props.metadata).get(_ETAG_KEY)
            new = encode_metadata(metadata)
            if etag:
                new[_ETAG_KEY] = etag
            client.set_blob_metadata(
                new, etag=props.etag, match_condition=MatchConditions.IfNotModified
            )

    def signed_get_url(
        self,
        bucket: str,
        key: str,
        *,
        expires_at: dt.datetime,
        endpoint_url: str | None = None,
    ) -> str:
        """Return a read-only SAS URL of an object, valid until ``expires_at``.

        ``endpoint_url`` is the blob endpoint clients reach (with the account
        path for Azurite); the client's own endpoint when None. Signing is
        local: no request is made.

        Raises:
            StoreAccessDenied: the store has no account key to sign with.
        """
        self._check_key(key)
        credential = self._service.credential
        account_name = getattr(credential, "account_name", None)
        account_key = getattr(credential, "account_key", None)
        if not account_name or not account_key:
            raise StoreAccessDenied(
                f"sign {bucket}/{key}: SAS links need the account key "
                "(connection string or account_name/account_key)"
            )
        start = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=SAS_CLOCK_SKEW_S)
        token = generate_blob_sas(
            account_name,
            bucket,
            key,
            account_key=account_key,
            permission=BlobSasPermissions(read=True),
            expiry=expires_at,
            start=start,
        )
        base = (endpoint_url or self._service.url).rstrip("/")
        return f"{base}/{quote(bucket)}/{quote(key)}?{token}"
