"""What only the Azure Blob store does: metadata names, blocks as parts, records.

The shared behaviour is in :mod:`test_object_store_contract`; these tests
cover how the S3 model maps onto block blobs (see
:mod:`edge_agent.upload.azure`).
"""

from __future__ import annotations

import os
import re
import uuid

import pytest

from edge_agent.upload import (
    BodyChecksum,
    ChecksumMode,
    InvalidObjectKey,
    UploadedPart,
    UploadNotFound,
)
from edge_agent.upload.azure import (
    AzureBlobStore,
    decode_metadata,
    encode_metadata,
)
from tests.support.azurite import AzuriteBlob

MIB = 1024 * 1024


@pytest.fixture
def store(azurite_blob: AzuriteBlob) -> AzureBlobStore:
    return AzureBlobStore.connect(connection_string=azurite_blob.connection_string)


@pytest.fixture
def bucket(store: AzureBlobStore) -> str:
    name = f"azure-{uuid.uuid4().hex[:10]}"
    store.ensure_bucket(name)
    return name


def _part(
    store: AzureBlobStore, bucket: str, key: str, upload_id: str, n: int, data: bytes
) -> UploadedPart:
    checksum = BodyChecksum.of(data, ChecksumMode.MD5)
    etag = store.upload_part(bucket, key, upload_id, n, data, checksum)
    return UploadedPart(n, etag, len(data))


def test_metadata_names_are_identifiers_and_round_trip() -> None:
    metadata = {"log-id": "L1", "a_b": "x", "Upper": "y", "x.y": "z", "9lives": "w"}
    encoded = encode_metadata(metadata)
    assert all(re.fullmatch(r"[a-z_][a-z0-9_]*", name) for name in encoded)
    assert encoded["m_log_2did"] == "L1"
    assert decode_metadata({**encoded, "s_etag": "abc"}) == metadata


@pytest.mark.parametrize("bucket_name", ["Bad_Name", "a.b", "ab", "-lead", "a--b"])
def test_container_names_azure_refuses_are_refused_here(
    store: AzureBlobStore, bucket_name: str
) -> None:
    with pytest.raises(InvalidObjectKey):
        store.ensure_bucket(bucket_name)


def test_a_part_sent_twice_is_listed_once_and_complete_picks_by_etag(
    store: AzureBlobStore, bucket: str
) -> None:
    upload_id = store.create_multipart_upload(
        bucket, "k", metadata={}, checksum_mode=ChecksumMode.MD5
    )
    first = _part(store, bucket, "k", upload_id, 1, b"first bytes")
    second = _part(store, bucket, "k", upload_id, 1, b"second bytes!")
    [listed] = store.list_parts(bucket, "k", upload_id)
    assert listed.part_number == 1 and listed.etag in (first.etag, second.etag)
    store.complete_multipart_upload(bucket, "k", upload_id, [first])
    assert store.get_object(bucket, "k") == b"first bytes"


def test_two_uploads_of_one_key_keep_their_parts_apart(
    store: AzureBlobStore, bucket: str
) -> None:
    one = store.create_multipart_upload(
        bucket, "k", metadata={}, checksum_mode=ChecksumMode.MD5
    )
    two = store.create_multipart_upload(
        bucket, "k", metadata={}, checksum_mode=ChecksumMode.MD5
    )
    _part(store, bucket, "k", one, 1, b"one")
    _part(store, bucket, "k", two, 1, b"two")
    _part(store, bucket, "k", two, 2, b"two again")
    assert {u.upload_id for u in store.list_multipart_uploads(bucket)} == {one, two}
    assert [p.part_number for p in store.list_parts(bucket, "k", one)] == [1]
    assert [p.part_number for p in store.list_parts(bucket, "k", two)] == [1, 2]
    with pytest.raises(UploadNotFound):
        store.list_parts(bucket, "other-key", one)
    store.abort_multipart_upload(bucket, "k", one)
    store.abort_multipart_upload(bucket, "k", two)


def test_complete_whose_reply_was_lost_is_recognised(
    azurite_blob: AzuriteBlob, bucket: str
) -> None:
    """The blocks were committed but the record survived: complete again works."""

    class CrashBeforeRecordDrop(AzureBlobStore):
        crash = True

        def _drop_record(self, bucket: str, upload_id: str, what: str) -> None:
            if self.crash:
                self.crash = False
                raise ConnectionError("simulated crash after the commit")
            super()._drop_record(bucket, upload_id, what)

    plain = AzureBlobStore.connect(connection_string=azurite_blob.connection_string)
    store = CrashBeforeRecordDrop(plain.service)
    data = [os.urandom(5 * MIB), b"tail"]
    upload_id = store.create_multipart_upload(
        bucket, "big", metadata={"kind": "raw"}, checksum_mode=ChecksumMode.MD5
    )
    parts = [
        _part(store, bucket, "big", upload_id, n, d) for n, d in enumerate(data, 1)
    ]
    with pytest.raises(ConnectionError):
        store.complete_multipart_upload(bucket, "big", upload_id, parts)
    assert store.list_multipart_uploads(bucket) != []

    etag = store.complete_multipart_upload(bucket, "big", upload_id, parts)
    assert etag.endswith("-2")
    assert store.list_multipart_uploads(bucket) == []
    info = store.head_object(bucket, "big")
    assert info is not None and info.etag == etag
    assert info.metadata == {"kind": "raw"}
    with pytest.raises(UploadNotFound):
        store.complete_multipart_upload(bucket, "big", upload_id, parts)


def test_replace_metadata_keeps_bytes_and_etag(
    store: AzureBlobStore, bucket: str
) -> None:
    data = b"keep me"
    etag = store.put_object(
        bucket,
        "k",
        data,
        metadata={"old": "1"},
        checksum=BodyChecksum.of(data, ChecksumMode.MD5),
    )
    store.replace_metadata(bucket, "k", {"new-key": "2"})
    info = store.head_object(bucket, "k")
    assert info is not None
    assert (info.etag, info.metadata) == (etag, {"new-key": "2"})
    assert store.get_object(bucket, "k") == data
