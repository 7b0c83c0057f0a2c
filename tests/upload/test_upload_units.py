"""Key layout, metadata encoding, error mapping and settings checks."""

from __future__ import annotations

import datetime as dt
import hashlib
import socket

import pytest
from botocore.exceptions import (
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    ReadTimeoutError,
)

from edge_agent.upload import (
    BucketNames,
    BucketNotFound,
    IntegrityError,
    InvalidObjectKey,
    ObjectLayout,
    ObjectMetadata,
    ObjectNotFound,
    ObjectStoreUnavailable,
    S3Store,
    StorageError,
    StoreAccessDenied,
    UploadNotFound,
    UploadSettings,
    map_boto_error,
    multipart_etag,
)


def test_layout_builds_the_documented_keys() -> None:
    layout = ObjectLayout()
    day = dt.date(2026, 3, 7)
    assert (
        str(layout.raw_csv("r1", "S1", day, "L1")) == "raw/r1/S1/2026/03/07/L1.csv.gz"
    )
    assert str(layout.analytics("r1", "S1", "L1")) == "analytics/r1/S1/L1.json"
    assert str(layout.crash("r1", "S1", "L1", "w.npz")) == "crash/r1/S1/L1/w.npz"
    assert str(layout.crash_prefix("r1", "S1", "L1")) == "crash/r1/S1/L1/"
    assert str(layout.archive("r1", "S1", "U9", "ride 1.CSV")) == (
        "archive/r1/S1/U9/ride 1.CSV"
    )


def test_layout_bucket_names_are_configurable() -> None:
    layout = ObjectLayout(BucketNames(raw="acme-raw", analytics="acme-an"))
    ref = layout.raw_csv("r", "s", dt.date(2026, 1, 1), "l")
    assert (ref.bucket, ref.key) == ("acme-raw", "r/s/2026/01/01/l.csv.gz")
    assert layout.analytics("r", "s", "l").bucket == "acme-an"


@pytest.mark.parametrize("bad", ["", ".", "..", "a/b", "a\\b", "tab\there", "x" * 201])
def test_layout_refuses_unsafe_segments(bad: str) -> None:
    with pytest.raises(InvalidObjectKey, match="rider_id"):
        ObjectLayout().analytics(bad, "S1", "L1")


def test_metadata_round_trips_with_non_ascii_values() -> None:
    meta = ObjectMetadata(
        sha256_hex="ab" * 32,
        log_id="L1",
        suit_id="S1",
        rider_id="rémi ø",
        kind="raw_csv",
        sample_count=42,
        extra={"gateway-id": "gw-1"},
    )
    headers = meta.to_s3()
    assert all(key == key.lower() and key.isascii() for key in headers)
    assert all(value.isascii() for value in headers.values())
    assert "log-start-utc" not in headers
    assert ObjectMetadata.from_s3(headers) == meta


@pytest.mark.parametrize(
    "change",
    [
        {"sha256_hex": "AB" * 32},
        {"extra": {"Bad_Key": "x"}},
        {"extra": {"sha256": "x"}},
        {"extra": {"big": "x" * 3000}},
    ],
)
def test_metadata_refuses_bad_values(change: dict[str, object]) -> None:
    fields: dict[str, object] = {
        "sha256_hex": "ab" * 32,
        "log_id": "L1",
        "suit_id": "S1",
        "rider_id": "r",
        "kind": "raw_csv",
    }
    fields.update(change)
    with pytest.raises(ValueError, match="L1"):
        ObjectMetadata(**fields).to_s3()  # type: ignore[arg-type]


def test_metadata_missing_keys_are_named() -> None:
    with pytest.raises(ValueError, match="rider-id"):
        ObjectMetadata.from_s3(
            {"sha256": "x", "log-id": "l", "suit-id": "s", "kind": "k"}
        )


def _client_error(code: str, status: int) -> ClientError:
    return ClientError(
        {
            "Error": {"Code": code, "Message": f"{code} message"},
            "ResponseMetadata": {
                "HTTPStatusCode": status,
                "HTTPHeaders": {},
                "HostId": "",
                "RequestId": "r1",
                "RetryAttempts": 0,
            },
        },
        "PutObject",
    )


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (_client_error("NoSuchBucket", 404), BucketNotFound),
        (_client_error("NoSuchUpload", 404), UploadNotFound),
        (_client_error("NoSuchKey", 404), ObjectNotFound),
        (_client_error("AccessDenied", 403), StoreAccessDenied),
        (_client_error("SignatureDoesNotMatch", 403), StoreAccessDenied),
        (_client_error("BadDigest", 400), IntegrityError),
        (_client_error("InvalidPart", 400), IntegrityError),
        (_client_error("SlowDown", 503), ObjectStoreUnavailable),
        (_client_error("WeirdThing", 502), ObjectStoreUnavailable),
        (_client_error("EntityTooSmall", 400), StorageError),
        (
            EndpointConnectionError(endpoint_url="http://127.0.0.1:9"),
            ObjectStoreUnavailable,
        ),
        (ReadTimeoutError(endpoint_url="http://127.0.0.1:9"), ObjectStoreUnavailable),
        (NoCredentialsError(), StoreAccessDenied),
    ],
)
def test_boto_errors_map_into_the_storage_tree(
    error: Exception, expected: type[StorageError]
) -> None:
    mapped = map_boto_error(error, "put raw/k")
    assert type(mapped) is expected
    assert "put raw/k" in str(mapped)


def test_unreachable_endpoint_is_reported_as_unavailable() -> None:
    # A loopback port nobody listens on: connection refused at once.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    store = S3Store.connect(
        f"http://127.0.0.1:{port}",
        access_key_id="k",
        secret_access_key="s",
        connect_timeout_s=1,
        read_timeout_s=1,
        max_attempts=1,
    )
    with pytest.raises(ObjectStoreUnavailable, match="head raw/k"):
        store.head_object("raw", "k")


def test_settings_refuse_parts_below_the_s3_minimum() -> None:
    with pytest.raises(ValueError, match="part_size_bytes"):
        UploadSettings(part_size_bytes=1024 * 1024)


def test_multipart_etag_matches_s3_definition() -> None:
    parts = [hashlib.md5(b"a").hexdigest(), hashlib.md5(b"b").hexdigest()]
    joined = hashlib.md5(hashlib.md5(b"a").digest() + hashlib.md5(b"b").digest())
    assert multipart_etag(parts) == f"{joined.hexdigest()}-2"
