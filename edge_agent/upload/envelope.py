"""Client-side envelope encryption: an ObjectStore that stores only ciphertext.

:class:`EnvelopeStore` wraps any :class:`~edge_agent.upload.store.ObjectStore`
(local folder, S3 without server-side encryption, Azurite) so the bytes that
reach the store's disks are AES-256-GCM ciphertext:

* every object gets a fresh random 256-bit data key, wrapped under the key
  ring's active key-encryption key (:mod:`edge_agent.upload.keyring`); the
  wrapped key and the KEK's id travel in the object's metadata
  (``enc-key-id``, ``enc-dek``), so KEKs can rotate: old objects stay
  readable while their KEK is in the ring, and :func:`rewrap_object`
  re-wraps a data key under the active KEK without touching the data where
  the store can replace metadata in place;
* the body is a sequence of frames, one per single put or multipart part::

      magic "SLE1" | frame number u32 | plaintext length u32 | nonce 12 bytes
      | ciphertext | GCM tag 16 bytes                    (40 bytes overhead)

  authenticated with the frame header as associated data; frame numbers
  (1 for a put, the part number for a multipart part) must ascend, so
  frames cannot be reordered or duplicated, and a dropped frame fails the
  frame count check below;
* user metadata stays in clear (the catalog and the uploader read it): the
  plaintext SHA-256 the uploader verifies, rider, suit and log ids. Sizes
  and metadata returned by :meth:`EnvelopeStore.head_object` are those of
  the plaintext; ETags are the inner store's (of the ciphertext, as with
  S3's SSE-KMS), so the uploader runs with ``verify_etag`` off and checks
  size and SHA-256;
* reads decrypt and check the frame count (the ``-N`` of a multipart ETag,
  else 1) and, where recorded, the plaintext size;
* a multipart upload's wrapped data key is also kept in a small record
  object ``.envelope-uploads/{upload id}`` in the same bucket until the
  upload completes or is aborted, so parts sent after a restart use the
  same key. Keys under that prefix are refused and hidden from listings.

Known limits: objects stored before encryption was switched on are returned
as they are (no ``enc-scheme`` in their metadata), and a listing (which has
no metadata) reports their size 40 bytes short. A listing derives a
multipart object's plaintext size from the ``-N`` part count of its ETag.
Download links for encrypted objects must go through the API's own blob
route (it decrypts); a presigned S3/SAS link would hand out ciphertext.

Errors: :class:`~edge_agent.upload.keyring.UnknownKeyError` (the KEK is not
in the ring), :class:`~edge_agent.upload.errors.IntegrityError` (a frame or
wrapped key does not authenticate, frames missing); everything else
comes from the inner store.
"""

from __future__ import annotations

import base64
import io
import json
import logging
import os
import re
import struct
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol, runtime_checkable
from urllib.parse import quote

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from edge_agent.custody.durable import fsync_dir, temp_path_for

from .errors import (
    IntegrityError,
    InvalidObjectKey,
    ObjectNotFound,
    StorageError,
    UploadNotFound,
)
from .keyring import DATA_KEY_BYTES, KeyRing
from .store import (
    BodyChecksum,
    ChecksumMode,
    MultipartUploadInfo,
    ObjectInfo,
    ObjectStore,
    ObjectSummary,
    UploadedPart,
)

__all__ = [
    "FRAME_OVERHEAD_BYTES",
    "RECORD_PREFIX",
    "SCHEME",
    "EnvelopeStore",
    "MetadataReplacer",
    "RewrapSummary",
    "rewrap_bucket",
    "rewrap_object",
]

_LOGGER = logging.getLogger(__name__)

SCHEME = "env1-aes256gcm"
RECORD_PREFIX = ".envelope-uploads/"
_MAGIC = b"SLE1"
_FRAME_HEADER = struct.Struct(">4sII12s")
_TAG_BYTES = 16
FRAME_OVERHEAD_BYTES = _FRAME_HEADER.size + _TAG_BYTES
_NONCE_BYTES = 12
# Re-encrypting an object (stores that cannot replace metadata) sends it in
# parts of this size from this size on, like the uploader does.
REENCRYPT_PART_BYTES = 8 * 1024 * 1024
_META_SCHEME = "enc-scheme"
_META_KEY_ID = "enc-key-id"
_META_DEK = "enc-dek"
_META_SIZE = "enc-size"
_RESERVED_META_PREFIX = "enc-"
_PARTS_RE = re.compile(r"-(\d+)$")


@runtime_checkable
class MetadataReplacer(Protocol):
    """A store that can replace an object's metadata without rewriting it."""

    def replace_metadata(
        self, bucket: str, key: str, metadata: Mapping[str, str]
    ) -> None:
        """Replace the user metadata of an existing object."""
        ...


def _seal_frame(data_key: bytes, number: int, plaintext: bytes) -> bytes:
    nonce = os.urandom(_NONCE_BYTES)
    header = _FRAME_HEADER.pack(_MAGIC, number, len(plaintext), nonce)
    return header + AESGCM(data_key).encrypt(nonce, plaintext, header)


def _open_frames(data_key: bytes, stream: BinaryIO, what: str) -> Iterator[bytes]:
    """Yield the plaintext of each frame in ``stream``, checking their order."""
    aead = AESGCM(data_key)
    last = 0
    while header := stream.read(_FRAME_HEADER.size):
        if len(header) < _FRAME_HEADER.size:
            raise IntegrityError(f"{what}: truncated frame header after frame {last}")
        magic, number, length, nonce = _FRAME_HEADER.unpack(header)
        if magic != _MAGIC or number <= last:
            raise IntegrityError(
                f"{what}: frame after {last} has magic {magic!r} and number "
                f"{number}; not an envelope frame or out of order"
            )
        sealed = stream.read(length + _TAG_BYTES)
        if len(sealed) != length + _TAG_BYTES:
            raise IntegrityError(f"{what}: frame {number} is truncated")
        try:
            yield aead.decrypt(nonce, sealed, header)
        except InvalidTag as exc:
            raise IntegrityError(
                f"{what}: frame {number} does not authenticate (altered, or "
                "the object changed while it was read)"
            ) from exc
        last = number


def _frames_of(etag: str) -> int:
    match = _PARTS_RE.search(etag)
    return int(match.group(1)) if match else 1


@dataclass(frozen=True)
class _Envelope:
    key_id: str
    data_key: bytes


class EnvelopeStore:
    """Encrypt every object put into ``inner``; see the module docstring."""

    def __init__(self, inner: ObjectStore, keyring: KeyRing) -> None:
        """Store ciphertext in ``inner``, with data keys wrapped by ``keyring``."""
        self.inner = inner
        self.keyring = keyring
        self._upload_keys: dict[str, bytes] = {}

    @property
    def name(self) -> str:
        """Return a short description for log lines."""
        return f"envelope({self.keyring.active_key_id}):{self.inner.name}"

    # -- helpers --------------------------------------------------------------

    @staticmethod
    def _check_key(key: str) -> None:
        if key.startswith(RECORD_PREFIX):
            raise InvalidObjectKey(
                f"key {key!r}: {RECORD_PREFIX} is reserved for the envelope store"
            )

    @staticmethod
    def _check_plaintext(what: str, data: bytes, checksum: BodyChecksum) -> None:
        expected = BodyChecksum.of(data, checksum.mode)
        if expected.md5_b64 != checksum.md5_b64 or (
            checksum.flexible_b64 is not None
            and checksum.flexible_b64 != expected.flexible_b64
        ):
            raise IntegrityError(f"{what}: body does not match its {checksum.mode}")

    def _new_envelope(
        self, metadata: Mapping[str, str]
    ) -> tuple[bytes, dict[str, str]]:
        reserved = [key for key in metadata if key.startswith(_RESERVED_META_PREFIX)]
        if reserved:
            raise InvalidObjectKey(
                f"metadata keys {reserved}: the prefix {_RESERVED_META_PREFIX!r} is "
                "reserved for the envelope store"
            )
        data_key = os.urandom(DATA_KEY_BYTES)
        key_id, wrapped = self.keyring.wrap(data_key)
        return data_key, {
            **metadata,
            _META_SCHEME: SCHEME,
            _META_KEY_ID: key_id,
            _META_DEK: base64.b64encode(wrapped).decode("ascii"),
        }

    def _envelope(self, info: ObjectInfo) -> _Envelope | None:
        """Return the object's unwrapped data key, None for a plaintext object."""
        scheme = info.metadata.get(_META_SCHEME)
        if scheme is None:
            return None
        if scheme != SCHEME:
            raise StorageError(
                f"{info.bucket}/{info.key}: encryption scheme {scheme!r} is not "
                f"{SCHEME!r}; a newer software version wrote it"
            )
        key_id = info.metadata.get(_META_KEY_ID, "")
        try:
            wrapped = base64.b64decode(info.metadata.get(_META_DEK, ""), validate=True)
        except ValueError as exc:
            raise IntegrityError(
                f"{info.bucket}/{info.key}: malformed wrapped data key"
            ) from exc
        return _Envelope(key_id, self.keyring.unwrap(key_id, wrapped))

    @staticmethod
    def _record_key(upload_id: str) -> str:
        return RECORD_PREFIX + quote(upload_id, safe="")

    def _upload_key(self, bucket: str, key: str, upload_id: str) -> bytes:
        cached = self._upload_keys.get(upload_id)
        if cached is not None:
            return cached
        try:
            record = json.loads(
                self.inner.get_object(bucket, self._record_key(upload_id))
            )
        except ObjectNotFound as exc:
            raise UploadNotFound(
                f"upload {upload_id[:16]} of {bucket}/{key}: no envelope key record"
            ) from exc
        if record.get("key") != key:
            raise UploadNotFound(
                f"upload {upload_id[:16]}: belongs to {record.get('key')!r}, "
                f"not {key!r}"
            )
        data_key = self.keyring.unwrap(
            record["key_id"], base64.b64decode(record["dek"])
        )
        self._upload_keys[upload_id] = data_key
        return data_key

    def _drop_record(self, bucket: str, upload_id: str) -> None:
        self._upload_keys.pop(upload_id, None)
        self.inner.delete_object(bucket, self._record_key(upload_id))

    @staticmethod
    def _plain_info(info: ObjectInfo) -> ObjectInfo:
        """Return ``info`` as the caller sees it: plaintext size, own metadata."""
        if _META_SCHEME not in info.metadata:
            return info
        size = info.metadata.get(_META_SIZE)
        size_bytes = (
            int(size)
            if size is not None
            else info.size_bytes - FRAME_OVERHEAD_BYTES * _frames_of(info.etag)
        )
        metadata = {
            key: value
            for key, value in info.metadata.items()
            if not key.startswith(_RESERVED_META_PREFIX)
        }
        return ObjectInfo(
            info.bucket, info.key, size_bytes, info.etag, metadata, info.content_type
        )

    # -- ObjectStore --------------------------------------------------------

    def ensure_bucket(self, bucket: str) -> None:
        """Create ``bucket`` if it does not exist."""
        self.inner.ensure_bucket(bucket)

    def head_object(self, bucket: str, key: str) -> ObjectInfo | None:
        """Return the plaintext size, the ETag and metadata, or None if absent."""
        self._check_key(key)
        info = self.inner.head_object(bucket, key)
        return None if info is None else self._plain_info(info)

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
        """Encrypt ``data`` under a new data key and store it; return the ETag."""
        self._check_key(key)
        self._check_plaintext(f"put {bucket}/{key}", data, checksum)
        data_key, sealed_metadata = self._new_envelope(metadata)
        sealed_metadata[_META_SIZE] = str(len(data))
        body = _seal_frame(data_key, 1, data)
        return self.inner.put_object(
            bucket,
            key,
            body,
            metadata=sealed_metadata,
            checksum=BodyChecksum.of(body, checksum.mode),
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
        """Start an upload under a new data key; return its upload id."""
        self._check_key(key)
        data_key, sealed_metadata = self._new_envelope(metadata)
        upload_id = self.inner.create_multipart_upload(
            bucket,
            key,
            metadata=sealed_metadata,
            checksum_mode=checksum_mode,
            content_type=content_type,
        )
        record = json.dumps(
            {
                "key": key,
                "key_id": sealed_metadata[_META_KEY_ID],
                "dek": sealed_metadata[_META_DEK],
            }
        ).encode()
        try:
            self.inner.put_object(
                bucket,
                self._record_key(upload_id),
                record,
                metadata={},
                checksum=BodyChecksum.of(record, ChecksumMode.MD5),
                content_type="application/json",
            )
        except BaseException:
            self.inner.abort_multipart_upload(bucket, key, upload_id)
            raise
        self._upload_keys[upload_id] = data_key
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
        """Encrypt one part as frame ``part_number``; return the inner ETag."""
        self._check_key(key)
        what = f"upload {upload_id[:16]} part {part_number} of {bucket}/{key}"
        self._check_plaintext(what, data, checksum)
        frame = _seal_frame(self._upload_key(bucket, key, upload_id), part_number, data)
        return self.inner.upload_part(
            bucket,
            key,
            upload_id,
            part_number,
            frame,
            BodyChecksum.of(frame, checksum.mode),
        )

    def list_parts(self, bucket: str, key: str, upload_id: str) -> list[UploadedPart]:
        """Return the stored parts with their plaintext sizes."""
        self._check_key(key)
        return [
            UploadedPart(
                part.part_number, part.etag, part.size_bytes - FRAME_OVERHEAD_BYTES
            )
            for part in self.inner.list_parts(bucket, key, upload_id)
        ]

    def complete_multipart_upload(
        self, bucket: str, key: str, upload_id: str, parts: Sequence[UploadedPart]
    ) -> str:
        """Assemble the object from the inner parts ``parts`` name; return the ETag.

        Raises:
            IntegrityError: a part's ETag is not what the store holds.
        """
        self._check_key(key)
        what = f"complete upload {upload_id[:16]} of {bucket}/{key}"
        try:
            stored = {
                part.part_number: part
                for part in self.inner.list_parts(bucket, key, upload_id)
            }
        except UploadNotFound:
            self._drop_record(bucket, upload_id)
            raise
        inner_parts = []
        for part in parts:
            have = stored.get(part.part_number)
            if have is None or have.etag.strip('"') != part.etag.strip('"'):
                raise IntegrityError(
                    f"{what}: part {part.part_number} ETag {part.etag} does not "
                    f"match the stored {have.etag if have else 'nothing'}"
                )
            inner_parts.append(have)
        etag = self.inner.complete_multipart_upload(bucket, key, upload_id, inner_parts)
        self._drop_record(bucket, upload_id)
        return etag

    def abort_multipart_upload(self, bucket: str, key: str, upload_id: str) -> None:
        """Drop an upload, its parts and its key record."""
        self._check_key(key)
        self.inner.abort_multipart_upload(bucket, key, upload_id)
        self._drop_record(bucket, upload_id)

    def list_multipart_uploads(
        self, bucket: str, prefix: str = ""
    ) -> list[MultipartUploadInfo]:
        """Return the open multipart uploads whose key starts with ``prefix``."""
        return [
            upload
            for upload in self.inner.list_multipart_uploads(bucket, prefix)
            if not upload.key.startswith(RECORD_PREFIX)
        ]

    def _decrypt_to(
        self, info: ObjectInfo, envelope: _Envelope, source: BinaryIO, out: BinaryIO
    ) -> None:
        what = f"decrypt {info.bucket}/{info.key}"
        frames = size_bytes = 0
        for plaintext in _open_frames(envelope.data_key, source, what):
            out.write(plaintext)
            frames += 1
            size_bytes += len(plaintext)
        expected_frames = _frames_of(info.etag)
        expected_size = info.metadata.get(_META_SIZE)
        if frames != expected_frames or (
            expected_size is not None and int(expected_size) != size_bytes
        ):
            raise IntegrityError(
                f"{what}: {frames} frames with {size_bytes} bytes, expected "
                f"{expected_frames} frames and {expected_size or 'any'} bytes "
                "(frames missing or added)"
            )

    def get_object(self, bucket: str, key: str) -> bytes:
        """Return an object's plaintext (for small objects)."""
        self._check_key(key)
        info = self.inner.head_object(bucket, key)
        if info is None:
            raise ObjectNotFound(f"get {bucket}/{key}: no such object")
        envelope = self._envelope(info)
        data = self.inner.get_object(bucket, key)
        if envelope is None:
            return data
        out = io.BytesIO()
        self._decrypt_to(info, envelope, io.BytesIO(data), out)
        return out.getvalue()

    def download_file(self, bucket: str, key: str, target: Path) -> None:
        """Write an object's plaintext to ``target`` (atomically, fsynced)."""
        self._check_key(key)
        target = Path(target)
        info = self.inner.head_object(bucket, key)
        if info is None:
            raise ObjectNotFound(f"download {bucket}/{key}: no such object")
        envelope = self._envelope(info)
        if envelope is None:
            self.inner.download_file(bucket, key, target)
            return
        with tempfile.TemporaryDirectory(dir=target.parent, prefix=".enc-") as folder:
            sealed = Path(folder) / "sealed"
            self.inner.download_file(bucket, key, sealed)
            tmp = temp_path_for(target)
            try:
                with open(sealed, "rb") as source, open(tmp, "wb") as out:
                    self._decrypt_to(info, envelope, source, out)
                    out.flush()
                    os.fsync(out.fileno())
                os.replace(tmp, target)
            except BaseException:
                tmp.unlink(missing_ok=True)
                raise
        fsync_dir(target.parent)

    def open_plaintext(
        self, bucket: str, key: str
    ) -> tuple[ObjectInfo, Iterator[bytes]] | None:
        """Return an object's plaintext info and its bytes frame by frame.

        The ciphertext is fetched into a temporary file first (removed when
        the iterator ends or is closed); each frame is authenticated before
        it is yielded, the frame count checked at the end. None if absent.

        Raises:
            UnknownKeyError: the object's KEK is not in the ring.
            IntegrityError: (while iterating) a frame fails to authenticate.
        """
        self._check_key(key)
        info = self.inner.head_object(bucket, key)
        if info is None:
            return None
        envelope = self._envelope(info)
        folder = tempfile.TemporaryDirectory(prefix="envelope-")
        sealed = Path(folder.name) / "sealed"
        try:
            self.inner.download_file(bucket, key, sealed)
        except BaseException:
            folder.cleanup()
            raise

        def frames() -> Iterator[bytes]:
            try:
                with open(sealed, "rb") as source:
                    if envelope is None:
                        while chunk := source.read(1024 * 1024):
                            yield chunk
                        return
                    count = 0
                    for plaintext in _open_frames(
                        envelope.data_key, source, f"decrypt {bucket}/{key}"
                    ):
                        count += 1
                        yield plaintext
                    if count != _frames_of(info.etag):
                        raise IntegrityError(
                            f"decrypt {bucket}/{key}: {count} frames, "
                            f"expected {_frames_of(info.etag)}"
                        )
            finally:
                folder.cleanup()

        return self._plain_info(info), frames()

    def list_objects(self, bucket: str, prefix: str = "") -> list[ObjectSummary]:
        """Return the objects under ``prefix`` with plaintext sizes, by key."""
        return [
            ObjectSummary(
                item.key,
                item.size_bytes - FRAME_OVERHEAD_BYTES * _frames_of(item.etag),
                item.etag,
            )
            for item in self.inner.list_objects(bucket, prefix)
            if not item.key.startswith(RECORD_PREFIX)
        ]

    def delete_object(self, bucket: str, key: str) -> None:
        """Delete an object; a missing object is not an error."""
        self._check_key(key)
        self.inner.delete_object(bucket, key)


@dataclass
class RewrapSummary:
    """What :func:`rewrap_bucket` did, by object count."""

    current: int = 0
    rewrapped: int = 0
    reencrypted: int = 0
    plaintext: int = 0


def rewrap_object(store: EnvelopeStore, bucket: str, key: str) -> str:
    """Put an object's data key under the active KEK; return what was done.

    Returns ``"current"`` (already under the active key), ``"rewrapped"``
    (new wrapped key written in place, data untouched: the inner store has
    ``replace_metadata``), ``"reencrypted"`` (other stores: the object is
    read, encrypted under a new data key and written again) or
    ``"plaintext"`` (not encrypted; left alone).

    Raises:
        ObjectNotFound: no such object.
        UnknownKeyError: the object's KEK is not in the ring.
    """
    info = store.inner.head_object(bucket, key)
    if info is None:
        raise ObjectNotFound(f"rewrap {bucket}/{key}: no such object")
    envelope = store._envelope(info)
    if envelope is None:
        return "plaintext"
    if envelope.key_id == store.keyring.active_key_id:
        return "current"
    plain = store._plain_info(info)
    inner = store.inner
    if isinstance(inner, MetadataReplacer):
        key_id, wrapped = store.keyring.wrap(envelope.data_key)
        metadata = {
            **info.metadata,
            _META_KEY_ID: key_id,
            _META_DEK: base64.b64encode(wrapped).decode("ascii"),
            _META_SIZE: str(plain.size_bytes),
        }
        inner.replace_metadata(bucket, key, metadata)
        _LOGGER.info(
            "%s/%s: data key re-wrapped from key %s to %s",
            bucket,
            key,
            envelope.key_id,
            key_id,
        )
        return "rewrapped"
    _reencrypt(store, plain)
    _LOGGER.info(
        "%s/%s: re-encrypted under key %s (the store cannot replace metadata)",
        bucket,
        key,
        store.keyring.active_key_id,
    )
    return "reencrypted"


def _reencrypt(store: EnvelopeStore, info: ObjectInfo) -> None:
    with tempfile.TemporaryDirectory(prefix="rewrap-") as folder:
        path = Path(folder) / "plain"
        store.download_file(info.bucket, info.key, path)
        size_bytes = path.stat().st_size
        with open(path, "rb") as source:
            if size_bytes < 2 * REENCRYPT_PART_BYTES:
                data = source.read()
                store.put_object(
                    info.bucket,
                    info.key,
                    data,
                    metadata=info.metadata,
                    checksum=BodyChecksum.of(data, ChecksumMode.MD5),
                    content_type=info.content_type,
                )
                return
            upload_id = store.create_multipart_upload(
                info.bucket,
                info.key,
                metadata=info.metadata,
                checksum_mode=ChecksumMode.MD5,
                content_type=info.content_type,
            )
            parts = []
            number = 0
            while chunk := source.read(REENCRYPT_PART_BYTES):
                number += 1
                etag = store.upload_part(
                    info.bucket,
                    info.key,
                    upload_id,
                    number,
                    chunk,
                    BodyChecksum.of(chunk, ChecksumMode.MD5),
                )
                parts.append(UploadedPart(number, etag, len(chunk)))
            store.complete_multipart_upload(info.bucket, info.key, upload_id, parts)


def rewrap_bucket(store: EnvelopeStore, bucket: str, prefix: str = "") -> RewrapSummary:
    """Re-wrap every object under ``prefix`` whose KEK is not the active one.

    Idempotent: objects already under the active key are counted as current.

    Raises:
        UnknownKeyError: an object's KEK is not in the ring (nothing after
            it is processed; add the key file and run again).
    """
    summary = RewrapSummary()
    for item in store.list_objects(bucket, prefix):
        outcome = rewrap_object(store, bucket, item.key)
        setattr(summary, outcome, getattr(summary, outcome) + 1)
    _LOGGER.info(
        "%s/%s: %d re-wrapped, %d re-encrypted, %d current, %d not encrypted",
        bucket,
        prefix,
        summary.rewrapped,
        summary.reencrypted,
        summary.current,
        summary.plaintext,
    )
    return summary
