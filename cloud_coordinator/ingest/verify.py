"""Check a stored object before it is catalogued: present, and what it claims.

The HEAD response gives the size and the gateway's metadata (SHA-256,
rider, suit, log). With ``hash`` verification (the default) the bytes are
read and hashed, so a truncated or altered object is refused even when its
metadata looks right; ``metadata`` trusts the store's metadata, for stores
that verify checksums themselves. Objects up to
:data:`HASH_IN_MEMORY_MAX_BYTES` are read into memory; bigger ones are
streamed through a temporary file so memory stays bounded.
"""

from __future__ import annotations

import hashlib
import tempfile
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from edge_agent.upload import (
    SHA256_KEY,
    BucketNames,
    ObjectInfo,
    ObjectNotFound,
    ObjectStore,
)

from ..catalog import InvalidRecord, ObjectRecord, Rider, record_from_object
from .errors import BadObject

__all__ = [
    "HASH_IN_MEMORY_MAX_BYTES",
    "VerifiedObject",
    "VerifyMode",
    "sha256_of_object",
    "verify_object",
]

# Analytics JSON and small CSVs are hashed in memory; 250 MB raw logs go
# through a temporary file so a worker stays within a few tens of MB.
HASH_IN_MEMORY_MAX_BYTES = 32 * 1024 * 1024
_CHUNK_BYTES = 1024 * 1024


class VerifyMode(StrEnum):
    """How far an object is checked."""

    HASH = "hash"
    METADATA = "metadata"


@dataclass(frozen=True)
class VerifiedObject:
    """An object that passed the checks, its record and (if small) its bytes."""

    info: ObjectInfo
    record: ObjectRecord
    data: bytes | None


def sha256_of_object(
    store: ObjectStore, info: ObjectInfo, temp_dir: Path | None = None
) -> tuple[str, bytes | None]:
    """Return the object's SHA-256 and, if read into memory, its bytes."""
    if info.size_bytes <= HASH_IN_MEMORY_MAX_BYTES:
        data = store.get_object(info.bucket, info.key)
        return hashlib.sha256(data).hexdigest(), data
    with tempfile.TemporaryDirectory(dir=temp_dir, prefix="ingest-") as folder:
        target = Path(folder) / "object"
        store.download_file(info.bucket, info.key, target)
        digest = hashlib.sha256()
        with open(target, "rb") as source:
            while chunk := source.read(_CHUNK_BYTES):
                digest.update(chunk)
    return digest.hexdigest(), None


def verify_object(
    store: ObjectStore,
    buckets: BucketNames,
    bucket: str,
    key: str,
    *,
    mode: VerifyMode,
    rider: Rider | None = None,
    known_sha256: str | None = None,
    temp_dir: Path | None = None,
) -> VerifiedObject:
    """Return the checked record of ``bucket``/``key``.

    Args:
        store: where the object is.
        buckets: which buckets hold raw, analytics and crash objects.
        bucket, key: the object.
        mode: ``hash`` reads and hashes the bytes; ``metadata`` does not.
        rider: the catalog's rider, for user type and product (optional).
        known_sha256: the SHA-256 the catalog holds for this key already; a
            HEAD showing the same digest and size skips the hashing.
        temp_dir: where big objects are streamed for hashing.

    Raises:
        BadObject: missing, not in a catalogued bucket, metadata missing or
            malformed, or the bytes do not match the recorded SHA-256.
        StorageError: the store failed (transient: retry).
    """
    where = f"object {bucket}/{key}"
    try:
        info = store.head_object(bucket, key)
    except ObjectNotFound:
        info = None
    if info is None:
        raise BadObject(f"{where}: not in the store (the event names it)")
    if SHA256_KEY not in {name.lower() for name in info.metadata}:
        raise BadObject(f"{where}: no {SHA256_KEY} metadata; not a gateway upload")
    try:
        record = record_from_object(info, buckets, rider=rider)
    except InvalidRecord as exc:
        raise BadObject(str(exc)) from exc
    data: bytes | None = None
    if mode is VerifyMode.HASH and known_sha256 != record.sha256_hex:
        actual, data = sha256_of_object(store, info, temp_dir)
        if actual != record.sha256_hex:
            raise BadObject(
                f"{where}: content SHA-256 {actual} does not match the "
                f"recorded {record.sha256_hex} ({info.size_bytes} bytes); the "
                "object is corrupt or was overwritten"
            )
    return VerifiedObject(info, record, data)
