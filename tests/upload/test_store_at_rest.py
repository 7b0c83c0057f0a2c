"""Encryption at rest: no plaintext of an uploaded log in the store's own files.

A log full of a random marker is uploaded through the uploader (one single
put and one multipart upload) into each backend; then every file under the
store's data folder (local store root, SeaweedFS volume folder, Azurite
workspace) is scanned for the marker. The same upload without encryption is
scanned too, so the scan is shown to find plaintext where it is stored.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
from collections.abc import Callable
from pathlib import Path

import pytest
from upload_helpers import MIB, metadata_for

from edge_agent.upload import (
    BucketNames,
    LocalDirStore,
    ObjectLayout,
    ObjectStore,
    S3Store,
    Uploader,
    UploadJournal,
    UploadSettings,
)
from edge_agent.upload.azure import AzureBlobStore
from edge_agent.upload.envelope import EnvelopeStore
from edge_agent.upload.keyring import FileKeyRing
from tests.support.azurite import AzuriteBlob
from tests.support.seaweed import SeaweedS3

# Marker spacing in the log: every part and every storage chunk holds some.
MARKER_EVERY_BYTES = 64 * 1024
SCAN_CHUNK_BYTES = 4 * MIB

StoreFactory = Callable[[bool], tuple[ObjectStore, Path, bool]]


def _log_with_marker(path: Path, size_bytes: int, marker: bytes) -> str:
    """Write random bytes with ``marker`` every MARKER_EVERY_BYTES; return SHA-256."""
    digest = hashlib.sha256()
    with open(path, "wb") as out:
        written = 0
        while written < size_bytes:
            block = marker + os.urandom(MARKER_EVERY_BYTES - len(marker))
            block = block[: size_bytes - written]
            digest.update(block)
            out.write(block)
            written += len(block)
    return digest.hexdigest()


def _files_containing(root: Path, marker: bytes) -> list[Path]:
    found = []
    for path in sorted(root.rglob("*")):
        if not path.is_file() or path.is_symlink():
            continue
        tail = b""
        with open(path, "rb") as source:
            while chunk := source.read(SCAN_CHUNK_BYTES):
                if marker in tail + chunk:
                    found.append(path)
                    break
                tail = chunk[-len(marker) :]
    return found


def _upload_two_logs(store: ObjectStore, tmp_path: Path, marker: bytes) -> None:
    """Upload a small log (single put) and an 11 MiB log (3 parts)."""
    layout = ObjectLayout(BucketNames())
    store.ensure_bucket(layout.buckets.raw)
    encrypted = isinstance(store, EnvelopeStore)
    settings = UploadSettings(
        multipart_threshold_bytes=5 * MIB,
        part_size_bytes=5 * MIB,
        verify_etag=not encrypted,
    )
    journal = UploadJournal(tmp_path / "journal.db")
    try:
        uploader = Uploader(store, journal, settings)
        for log_id, size_bytes in (("small", 300 * 1024), ("big", 11 * MIB)):
            path = tmp_path / f"{log_id}.csv.gz"
            sha256_hex = _log_with_marker(path, size_bytes, marker)
            ref = layout.raw_csv(
                "rider-7",
                "SUIT-0001",
                dt.date(2026, 5, 1),
                f"{log_id}-{marker[-8:].decode()}",
            )
            uploader.upload_file(ref, path, metadata_for(sha256_hex, log_id=log_id))
            back = tmp_path / f"{log_id}.back"
            store.download_file(ref.bucket, ref.key, back)
            assert hashlib.sha256(back.read_bytes()).hexdigest() == sha256_hex
            back.unlink()
            path.unlink()
    finally:
        journal.close()


def _keyring() -> FileKeyRing:
    return FileKeyRing(os.urandom(32))


def _new_marker() -> bytes:
    return b"PLAINTEXT-MARKER-" + os.urandom(8).hex().encode()


@pytest.fixture
def marker() -> bytes:
    return _new_marker()


def test_local_store_files_hold_no_plaintext(tmp_path: Path, marker: bytes) -> None:
    plain_root, sealed_root = tmp_path / "plain", tmp_path / "sealed"
    _upload_two_logs(LocalDirStore(plain_root), tmp_path, marker)
    assert _files_containing(plain_root, marker)

    secret = _new_marker()
    sealed = EnvelopeStore(LocalDirStore(sealed_root), _keyring())
    _upload_two_logs(sealed, tmp_path, secret)
    assert _files_containing(sealed_root, secret) == []


@pytest.mark.s3
@pytest.mark.parametrize("encryption", ["sse-s3", "envelope"])
def test_seaweedfs_volume_files_hold_no_plaintext(
    seaweed_s3: SeaweedS3, tmp_path: Path, marker: bytes, encryption: str
) -> None:
    def connect(sse: str | None) -> S3Store:
        return S3Store.connect(
            seaweed_s3.endpoint_url,
            access_key_id=seaweed_s3.access_key_id,
            secret_access_key=seaweed_s3.secret_access_key,
            server_side_encryption=sse,
        )

    _upload_two_logs(connect(None), tmp_path, marker)
    assert _files_containing(seaweed_s3.data_dir, marker)

    secret = _new_marker()
    store: ObjectStore = (
        connect("AES256")
        if encryption == "sse-s3"
        else EnvelopeStore(connect(None), _keyring())
    )
    _upload_two_logs(store, tmp_path, secret)
    assert _files_containing(seaweed_s3.data_dir, secret) == []


def test_azurite_files_hold_no_plaintext(
    azurite_blob: AzuriteBlob, tmp_path: Path, marker: bytes
) -> None:
    store = AzureBlobStore.connect(connection_string=azurite_blob.connection_string)
    _upload_two_logs(store, tmp_path, marker)
    assert _files_containing(azurite_blob.data_dir, marker)

    secret = _new_marker()
    _upload_two_logs(EnvelopeStore(store, _keyring()), tmp_path, secret)
    assert _files_containing(azurite_blob.data_dir, secret) == []
