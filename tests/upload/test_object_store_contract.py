"""One test class for the ObjectStore interface, run against every backend.

The backends: the local-directory store, S3 (SeaweedFS), Azure Blob
(Azurite); :mod:`test_store_envelope` runs the same class against the
envelope-encrypting wrapper over each of them.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from pathlib import Path

import pytest
from upload_helpers import MIB

from edge_agent.upload import (
    BodyChecksum,
    BucketNotFound,
    ChecksumMode,
    IntegrityError,
    LocalDirStore,
    ObjectStore,
    S3Store,
    UploadedPart,
    UploadNotFound,
    multipart_etag,
)
from edge_agent.upload.azure import AzureBlobStore
from tests.support.azurite import AzuriteBlob
from tests.support.seaweed import SeaweedS3

META = {"sha256": "ab" * 32, "log-id": "L1", "rider-id": "r%C3%A9mi"}


class ObjectStoreContract:
    """Behaviour every ObjectStore backend must show; subclasses give a store.

    ``ETAG_IS_BODY_MD5`` is False for stores whose ETags are not the MD5 of
    the bytes given (an encrypting store's ETag is that of the ciphertext,
    as with S3's SSE-KMS); the uploader then checks size and SHA-256 only.
    """

    ETAG_IS_BODY_MD5 = True

    @pytest.fixture
    def store(self, tmp_path: Path) -> ObjectStore:
        raise NotImplementedError

    @pytest.fixture
    def bucket(self, store: ObjectStore) -> str:
        name = f"contract-{uuid.uuid4().hex[:10]}"
        store.ensure_bucket(name)
        store.ensure_bucket(name)  # idempotent
        return name

    def test_put_and_head_round_trip_metadata(
        self, store: ObjectStore, bucket: str
    ) -> None:
        data = os.urandom(3000)
        etag = store.put_object(
            bucket,
            "a/b/c.json",
            data,
            metadata=META,
            checksum=BodyChecksum.of(data, ChecksumMode.MD5),
            content_type="application/json",
        )
        info = store.head_object(bucket, "a/b/c.json")
        assert info is not None
        assert etag == info.etag
        if self.ETAG_IS_BODY_MD5:
            assert etag == hashlib.md5(data).hexdigest()
        assert info.size_bytes == 3000
        assert info.metadata == META
        assert info.content_type == "application/json"
        assert store.get_object(bucket, "a/b/c.json") == data

    def test_head_of_missing_object_is_none(
        self, store: ObjectStore, bucket: str
    ) -> None:
        assert store.head_object(bucket, "nope/never") is None

    def test_put_with_wrong_md5_is_refused(
        self, store: ObjectStore, bucket: str
    ) -> None:
        good = BodyChecksum.of(b"expected", ChecksumMode.MD5)
        with pytest.raises(IntegrityError):
            store.put_object(bucket, "k", b"received", metadata={}, checksum=good)
        assert store.head_object(bucket, "k") is None

    @pytest.mark.parametrize("mode", [ChecksumMode.SHA256, ChecksumMode.CRC32])
    def test_flexible_checksums_are_checked(
        self, store: ObjectStore, bucket: str, mode: ChecksumMode
    ) -> None:
        data = b"x" * 1000
        store.put_object(
            bucket, "ok", data, metadata={}, checksum=BodyChecksum.of(data, mode)
        )
        bad = BodyChecksum.of(b"y" * 1000, mode)
        bad = BodyChecksum(mode, BodyChecksum.of(data, mode).md5_b64, bad.flexible_b64)
        with pytest.raises(IntegrityError):
            store.put_object(bucket, "bad", data, metadata={}, checksum=bad)
        assert store.head_object(bucket, "bad") is None

    def test_put_into_missing_bucket_raises(self, store: ObjectStore) -> None:
        checksum = BodyChecksum.of(b"x", ChecksumMode.MD5)
        with pytest.raises(BucketNotFound):
            store.put_object(
                "no-such-bucket-x1", "k", b"x", metadata={}, checksum=checksum
            )

    def test_multipart_upload_assembles_parts(
        self, store: ObjectStore, bucket: str
    ) -> None:
        chunks = [os.urandom(5 * MIB), os.urandom(5 * MIB), os.urandom(1234)]
        upload_id = store.create_multipart_upload(
            bucket, "big/obj.bin", metadata=META, checksum_mode=ChecksumMode.MD5
        )
        parts = []
        for number, chunk in enumerate(chunks, start=1):
            checksum = BodyChecksum.of(chunk, ChecksumMode.MD5)
            etag = store.upload_part(
                bucket, "big/obj.bin", upload_id, number, chunk, checksum
            )
            if self.ETAG_IS_BODY_MD5:
                assert etag == checksum.md5_hex
            parts.append(UploadedPart(number, etag, len(chunk)))
        listed = store.list_parts(bucket, "big/obj.bin", upload_id)
        assert [(p.part_number, p.etag, p.size_bytes) for p in listed] == [
            (p.part_number, p.etag, p.size_bytes) for p in parts
        ]
        [open_upload] = store.list_multipart_uploads(bucket, "big/")
        assert (open_upload.key, open_upload.upload_id) == ("big/obj.bin", upload_id)

        etag = store.complete_multipart_upload(bucket, "big/obj.bin", upload_id, parts)

        info = store.head_object(bucket, "big/obj.bin")
        assert info is not None and info.etag == etag
        assert info.size_bytes == sum(len(c) for c in chunks)
        if self.ETAG_IS_BODY_MD5:
            assert etag == multipart_etag([hashlib.md5(c).hexdigest() for c in chunks])
        else:
            assert etag.endswith("-3")
        assert info.metadata == META
        assert store.get_object(bucket, "big/obj.bin") == b"".join(chunks)
        assert store.list_multipart_uploads(bucket) == []

    def test_complete_with_wrong_etag_is_refused(
        self, store: ObjectStore, bucket: str
    ) -> None:
        data = os.urandom(1000)
        upload_id = store.create_multipart_upload(
            bucket, "k", metadata={}, checksum_mode=ChecksumMode.MD5
        )
        store.upload_part(
            bucket, "k", upload_id, 1, data, BodyChecksum.of(data, ChecksumMode.MD5)
        )
        with pytest.raises(IntegrityError):
            store.complete_multipart_upload(
                bucket, "k", upload_id, [UploadedPart(1, "0" * 32, 1000)]
            )
        store.abort_multipart_upload(bucket, "k", upload_id)

    def test_abort_drops_upload_and_is_idempotent(
        self, store: ObjectStore, bucket: str
    ) -> None:
        upload_id = store.create_multipart_upload(
            bucket, "k", metadata={}, checksum_mode=ChecksumMode.MD5
        )
        store.abort_multipart_upload(bucket, "k", upload_id)
        store.abort_multipart_upload(bucket, "k", upload_id)
        assert store.list_multipart_uploads(bucket) == []
        with pytest.raises(UploadNotFound):
            store.list_parts(bucket, "k", upload_id)
        data = b"late"
        with pytest.raises(UploadNotFound):
            store.upload_part(
                bucket, "k", upload_id, 1, data, BodyChecksum.of(data, ChecksumMode.MD5)
            )

    def test_list_download_and_delete(
        self, store: ObjectStore, bucket: str, tmp_path: Path
    ) -> None:
        for key in ("r/1/a.csv.gz", "r/1/b.csv.gz", "r/2/c.csv.gz"):
            data = key.encode() * 10
            store.put_object(
                bucket,
                key,
                data,
                metadata={},
                checksum=BodyChecksum.of(data, ChecksumMode.MD5),
            )
        listed = store.list_objects(bucket, "r/1/")
        assert [s.key for s in listed] == ["r/1/a.csv.gz", "r/1/b.csv.gz"]
        assert listed[0].size_bytes == len(b"r/1/a.csv.gz" * 10)

        target = tmp_path / "downloaded"
        store.download_file(bucket, "r/2/c.csv.gz", target)
        assert target.read_bytes() == b"r/2/c.csv.gz" * 10

        store.delete_object(bucket, "r/1/a.csv.gz")
        store.delete_object(bucket, "r/1/a.csv.gz")
        assert [s.key for s in store.list_objects(bucket)] == [
            "r/1/b.csv.gz",
            "r/2/c.csv.gz",
        ]

    def test_overwrite_replaces_bytes_and_metadata(
        self, store: ObjectStore, bucket: str
    ) -> None:
        for body, meta in ((b"one", {"kind": "a"}), (b"two!", {"kind": "b"})):
            store.put_object(
                bucket,
                "k",
                body,
                metadata=meta,
                checksum=BodyChecksum.of(body, ChecksumMode.MD5),
            )
        info = store.head_object(bucket, "k")
        assert info is not None
        assert (info.size_bytes, info.metadata) == (4, {"kind": "b"})


class TestLocalDirStore(ObjectStoreContract):
    @pytest.fixture
    def store(self, tmp_path: Path) -> ObjectStore:
        return LocalDirStore(tmp_path / "objects")

    def test_layout_on_disk_is_bucket_folder_and_key_path(self, tmp_path: Path) -> None:
        store = LocalDirStore(tmp_path / "objects")
        store.ensure_bucket("raw")
        data = b"csv"
        store.put_object(
            "raw",
            "rider/suit/2026/05/01/L1.csv.gz",
            data,
            metadata={"sha256": "x"},
            checksum=BodyChecksum.of(data, ChecksumMode.MD5),
        )
        path = tmp_path / "objects" / "raw" / "rider/suit/2026/05/01/L1.csv.gz"
        assert path.read_bytes() == b"csv"
        assert path.with_name("L1.csv.gz.meta.json").exists()

    @pytest.mark.parametrize("key", ["../escape", "a//b", "/abs", "a/.", "x.meta.json"])
    def test_unsafe_keys_are_refused(self, tmp_path: Path, key: str) -> None:
        store = LocalDirStore(tmp_path / "objects")
        store.ensure_bucket("raw")
        with pytest.raises(ValueError):
            store.head_object("raw", key)

    def test_object_without_sidecar_has_no_metadata(self, tmp_path: Path) -> None:
        store = LocalDirStore(tmp_path / "objects")
        store.ensure_bucket("raw")
        data = b"abc"
        store.put_object(
            "raw",
            "k",
            data,
            metadata={"sha256": "x"},
            checksum=BodyChecksum.of(data, ChecksumMode.MD5),
        )
        (tmp_path / "objects" / "raw" / "k.meta.json").unlink()
        info = store.head_object("raw", "k")
        assert info is not None and info.metadata == {}


@pytest.mark.s3
class TestS3Store(ObjectStoreContract):
    @pytest.fixture
    def store(self, seaweed_s3: SeaweedS3) -> ObjectStore:
        return S3Store.connect(
            seaweed_s3.endpoint_url,
            access_key_id=seaweed_s3.access_key_id,
            secret_access_key=seaweed_s3.secret_access_key,
            region=seaweed_s3.region,
        )


class TestAzureBlobStore(ObjectStoreContract):
    @pytest.fixture
    def store(self, azurite_blob: AzuriteBlob) -> ObjectStore:
        return AzureBlobStore.connect(connection_string=azurite_blob.connection_string)
