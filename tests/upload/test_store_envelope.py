"""Envelope encryption: the store contract over every backend, rotation, tampering.

The shared :class:`ObjectStoreContract` runs against :class:`EnvelopeStore`
over the local-directory store, SeaweedFS and Azurite, and against S3 with
server-side encryption (SSE-S3); the other tests cover what only the
envelope store does.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
from pathlib import Path

import pytest
from test_object_store_contract import META, ObjectStoreContract
from upload_helpers import MIB, CountingStore, metadata_for, write_random_file

from edge_agent.upload import (
    BodyChecksum,
    BucketNames,
    ChecksumMode,
    IntegrityError,
    InvalidObjectKey,
    LocalDirStore,
    ObjectLayout,
    ObjectStore,
    S3Store,
    Uploader,
    UploadJournal,
    UploadSettings,
)
from edge_agent.upload.azure import AzureBlobStore
from edge_agent.upload.envelope import (
    FRAME_OVERHEAD_BYTES,
    RECORD_PREFIX,
    EnvelopeStore,
    rewrap_bucket,
)
from edge_agent.upload.keyring import FileKeyRing, UnknownKeyError, key_id_of
from tests.support.azurite import AzuriteBlob
from tests.support.seaweed import SeaweedS3

KEY_A = bytes(range(32))
KEY_B = bytes(range(100, 132))


def _ring(active: bytes = KEY_A, *old: bytes) -> FileKeyRing:
    return FileKeyRing(active, old)


def _put(store: ObjectStore, bucket: str, key: str, data: bytes) -> str:
    return store.put_object(
        bucket,
        key,
        data,
        metadata={**META, "sha256": hashlib.sha256(data).hexdigest()},
        checksum=BodyChecksum.of(data, ChecksumMode.MD5),
    )


class TestEnvelopeOverLocal(ObjectStoreContract):
    ETAG_IS_BODY_MD5 = False

    @pytest.fixture
    def store(self, tmp_path: Path) -> ObjectStore:
        return EnvelopeStore(LocalDirStore(tmp_path / "objects"), _ring())


@pytest.mark.s3
class TestEnvelopeOverS3(ObjectStoreContract):
    ETAG_IS_BODY_MD5 = False

    @pytest.fixture
    def store(self, seaweed_s3: SeaweedS3) -> ObjectStore:
        inner = S3Store.connect(
            seaweed_s3.endpoint_url,
            access_key_id=seaweed_s3.access_key_id,
            secret_access_key=seaweed_s3.secret_access_key,
        )
        return EnvelopeStore(inner, _ring())


class TestEnvelopeOverAzure(ObjectStoreContract):
    ETAG_IS_BODY_MD5 = False

    @pytest.fixture
    def store(self, azurite_blob: AzuriteBlob) -> ObjectStore:
        inner = AzureBlobStore.connect(connection_string=azurite_blob.connection_string)
        return EnvelopeStore(inner, _ring())


@pytest.mark.s3
class TestS3ServerSideEncryption(ObjectStoreContract):
    """SSE-S3 on SeaweedFS: the store encrypts, ETags stay MD5s."""

    @pytest.fixture
    def store(self, seaweed_s3: SeaweedS3) -> ObjectStore:
        return S3Store.connect(
            seaweed_s3.endpoint_url,
            access_key_id=seaweed_s3.access_key_id,
            secret_access_key=seaweed_s3.secret_access_key,
            server_side_encryption="AES256",
        )

    def test_objects_are_marked_encrypted(
        self, store: ObjectStore, seaweed_s3: SeaweedS3, bucket: str
    ) -> None:
        _put(store, bucket, "k", b"secret")
        assert isinstance(store, S3Store)
        head = store.client.head_object(Bucket=bucket, Key="k")
        assert head.get("ServerSideEncryption") == "AES256"


def test_ciphertext_in_inner_store_and_plaintext_view(tmp_path: Path) -> None:
    inner = LocalDirStore(tmp_path / "objects")
    store = EnvelopeStore(inner, _ring())
    store.ensure_bucket("raw")
    data = b"ride data " * 100
    _put(store, "raw", "k", data)

    raw = (tmp_path / "objects" / "raw" / "k").read_bytes()
    assert data[:10] not in raw
    assert len(raw) == len(data) + FRAME_OVERHEAD_BYTES
    inner_info = inner.head_object("raw", "k")
    assert inner_info is not None
    assert inner_info.metadata["enc-key-id"] == key_id_of(KEY_A)
    assert inner_info.metadata["sha256"] == hashlib.sha256(data).hexdigest()
    info = store.head_object("raw", "k")
    assert info is not None
    assert info.size_bytes == len(data)
    assert not any(name.startswith("enc-") for name in info.metadata)
    assert store.get_object("raw", "k") == data


def test_tampered_ciphertext_is_refused(tmp_path: Path) -> None:
    store = EnvelopeStore(LocalDirStore(tmp_path / "objects"), _ring())
    store.ensure_bucket("raw")
    _put(store, "raw", "k", os.urandom(2000))
    path = tmp_path / "objects" / "raw" / "k"
    sealed = bytearray(path.read_bytes())
    sealed[100] ^= 0x01
    path.write_bytes(bytes(sealed))
    with pytest.raises(IntegrityError, match="does not authenticate"):
        store.get_object("raw", "k")
    with pytest.raises(IntegrityError):
        store.download_file("raw", "k", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_rotation_keeps_old_objects_readable_and_rewrap_moves_keys(
    tmp_path: Path,
) -> None:
    inner = LocalDirStore(tmp_path / "objects")
    old = EnvelopeStore(inner, _ring(KEY_A))
    old.ensure_bucket("raw")
    data = {f"r/{n}": os.urandom(1000 + n) for n in range(3)}
    for key, body in data.items():
        _put(old, "raw", key, body)
    sealed_before = (tmp_path / "objects" / "raw" / "r" / "0").read_bytes()

    rotated = EnvelopeStore(inner, _ring(KEY_B, KEY_A))
    _put(rotated, "raw", "r/new", b"under the new key")
    assert rotated.get_object("raw", "r/0") == data["r/0"]

    summary = rewrap_bucket(rotated, "raw", "r/")
    assert (summary.rewrapped, summary.current, summary.reencrypted) == (3, 1, 0)
    # Data untouched: only the wrapped data key in the metadata changed.
    assert (tmp_path / "objects" / "raw" / "r" / "0").read_bytes() == sealed_before
    assert rewrap_bucket(rotated, "raw", "r/").current == 4

    only_new = EnvelopeStore(inner, _ring(KEY_B))
    for key, body in data.items():
        assert only_new.get_object("raw", key) == body
    with pytest.raises(UnknownKeyError, match=key_id_of(KEY_B)):
        EnvelopeStore(inner, _ring(KEY_A)).get_object("raw", "r/0")


@pytest.mark.s3
def test_rewrap_reencrypts_where_metadata_cannot_be_replaced(
    seaweed_s3: SeaweedS3,
) -> None:
    inner = S3Store.connect(
        seaweed_s3.endpoint_url,
        access_key_id=seaweed_s3.access_key_id,
        secret_access_key=seaweed_s3.secret_access_key,
    )
    bucket = seaweed_s3.new_bucket("rewrap")
    body = os.urandom(3000)
    _put(EnvelopeStore(inner, _ring(KEY_A)), bucket, "k", body)
    summary = rewrap_bucket(EnvelopeStore(inner, _ring(KEY_B, KEY_A)), bucket)
    assert summary.reencrypted == 1
    assert EnvelopeStore(inner, _ring(KEY_B)).get_object(bucket, "k") == body


def test_rewrap_on_azure_replaces_metadata_only(azurite_blob: AzuriteBlob) -> None:
    inner = AzureBlobStore.connect(connection_string=azurite_blob.connection_string)
    inner.ensure_bucket("rewrap-azure")
    body = os.urandom(3000)
    etag = _put(EnvelopeStore(inner, _ring(KEY_A)), "rewrap-azure", "k", body)
    summary = rewrap_bucket(EnvelopeStore(inner, _ring(KEY_B, KEY_A)), "rewrap-azure")
    assert summary.rewrapped == 1
    info = inner.head_object("rewrap-azure", "k")
    assert info is not None and info.etag == etag
    assert EnvelopeStore(inner, _ring(KEY_B)).get_object("rewrap-azure", "k") == body


def test_reserved_names_are_refused_and_records_hidden(tmp_path: Path) -> None:
    store = EnvelopeStore(LocalDirStore(tmp_path / "objects"), _ring())
    store.ensure_bucket("raw")
    with pytest.raises(InvalidObjectKey):
        _put(store, "raw", RECORD_PREFIX + "x", b"x")
    with pytest.raises(InvalidObjectKey):
        store.put_object(
            "raw",
            "k",
            b"x",
            metadata={"enc-key-id": "forged"},
            checksum=BodyChecksum.of(b"x", ChecksumMode.MD5),
        )
    upload_id = store.create_multipart_upload(
        "raw", "big", metadata={}, checksum_mode=ChecksumMode.MD5
    )
    assert store.list_objects("raw") == []
    assert store.inner.list_objects("raw")[0].key.startswith(RECORD_PREFIX)
    store.abort_multipart_upload("raw", "big", upload_id)
    assert store.inner.list_objects("raw") == []


def test_plaintext_objects_from_before_encryption_stay_readable(
    tmp_path: Path,
) -> None:
    inner = LocalDirStore(tmp_path / "objects")
    inner.ensure_bucket("raw")
    _put(inner, "raw", "old", b"written before encryption")
    store = EnvelopeStore(inner, _ring())
    assert store.get_object("raw", "old") == b"written before encryption"
    assert rewrap_bucket(store, "raw").plaintext == 1


def test_uploader_resumes_an_encrypted_multipart_upload_in_a_new_process(
    tmp_path: Path,
) -> None:
    """A fresh EnvelopeStore (no cached key) finishes what a crashed one began.

    The crash comes after part 2 reached the store but before the journal
    recorded it: with ciphertext ETags the uploader cannot tell that part's
    bytes from the store's listing, so it sends it again (as with SSE-KMS);
    part 1, journalled, is reused under the data key from the key record.
    """
    source = tmp_path / "log.csv.gz"
    sha256_hex = write_random_file(source, 21 * MIB)
    inner = LocalDirStore(tmp_path / "objects")
    layout = ObjectLayout(BucketNames())
    ref = layout.raw_csv("rider-7", "SUIT-0001", dt.date(2026, 5, 1), "L1")
    inner.ensure_bucket(ref.bucket)
    settings = UploadSettings(part_size_bytes=8 * MIB, verify_etag=False)

    class Crash(Exception):
        pass

    def crash_after_second(number: int) -> None:
        if number == 2:
            raise Crash

    first = CountingStore(EnvelopeStore(inner, _ring()), after_part=crash_after_second)
    journal = UploadJournal(tmp_path / "journal.db")
    with pytest.raises(Crash):
        Uploader(first, journal, settings).upload_file(
            ref, source, metadata_for(sha256_hex)
        )

    second = CountingStore(EnvelopeStore(inner, _ring()))
    result = Uploader(second, journal, settings).upload_file(
        ref, source, metadata_for(sha256_hex)
    )
    assert (result.parts_reused, result.parts_sent) == (1, 2)
    assert second.parts_sent == [2, 3]
    target = tmp_path / "back.csv.gz"
    second.download_file(ref.bucket, ref.key, target)
    assert hashlib.sha256(target.read_bytes()).hexdigest() == sha256_hex
    # The multipart key record is gone with the completed upload.
    assert [s.key for s in inner.list_objects(ref.bucket)] == [ref.key]
    journal.close()
