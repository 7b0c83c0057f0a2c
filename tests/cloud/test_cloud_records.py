"""Catalog records from stored objects' metadata, and opening catalogs by URL."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from cloud_helpers import T0, sha

from cloud_coordinator.catalog import (
    InvalidRecord,
    ObjectKind,
    PostgresCatalog,
    Rider,
    SqliteCatalog,
    UserType,
    kind_for_bucket,
    open_catalog,
    record_from_object,
)
from edge_agent.upload import (
    BodyChecksum,
    BucketNames,
    ChecksumMode,
    LocalDirStore,
    ObjectInfo,
    ObjectMetadata,
)


def _put(
    store: LocalDirStore, bucket: str, key: str, metadata: dict[str, str]
) -> ObjectInfo:
    data = b'{"schema": "ride-analytics/1"}'
    store.ensure_bucket(bucket)
    store.put_object(
        bucket,
        key,
        data,
        metadata=metadata,
        checksum=BodyChecksum.of(data, ChecksumMode.MD5),
    )
    info = store.head_object(bucket, key)
    assert info is not None
    return info


def test_record_from_gateway_metadata(tmp_path: Path) -> None:
    store = LocalDirStore(tmp_path)
    data_sha = sha(b'{"schema": "ride-analytics/1"}')
    metadata = ObjectMetadata(
        sha256_hex=data_sha,
        log_id="L1",
        suit_id="SUIT-1",
        rider_id="Zoë",  # percent-encoded in the metadata, decoded here
        kind="analytics",
        log_start_utc="2026-03-01T08:00:00Z",
        log_end_utc="2026-03-01T08:30:00+00:00",
        sample_count=180_000,
        software_version="0.1.0",
        model_version="1.0.0",
    ).to_s3()
    info = _put(store, "analytics", "Zoë/SUIT-1/L1.json", metadata)
    rider = Rider("Zoë", UserType.PROFESSIONAL, "extended", "t1")
    record = record_from_object(info, BucketNames(), rider=rider, crash=True)
    assert record.kind is ObjectKind.ANALYTICS and record.object_type == "analytics"
    assert record.rider_id == "Zoë" and record.log_id == "L1"
    assert record.sha256_hex == data_sha and record.size_bytes == info.size_bytes
    assert record.log_start == T0
    assert record.log_end == T0 + dt.timedelta(minutes=30)
    assert record.user_type is UserType.PROFESSIONAL and record.product == "extended"
    assert record.crash is True and record.model_version == "1.0.0"
    assert record.sample_count == 180_000


def test_bad_metadata_is_refused_with_the_object_named(tmp_path: Path) -> None:
    store = LocalDirStore(tmp_path)
    buckets = BucketNames()
    base = ObjectMetadata(
        sha256_hex="a" * 64, log_id="L1", suit_id="S1", rider_id="r1", kind="raw_csv"
    ).to_s3()
    missing = _put(store, "raw", "r1/S1/x.csv.gz", {"sha256": "a" * 64})
    with pytest.raises(InvalidRecord, match=r"raw/r1/S1/x.csv.gz: .*missing keys"):
        record_from_object(missing, buckets)
    naive = _put(
        store, "raw", "r1/S1/y.csv.gz", {**base, "log-start-utc": "2026-03-01T08:00"}
    )
    with pytest.raises(InvalidRecord, match="no time zone"):
        record_from_object(naive, buckets)
    junk_time = _put(store, "raw", "r1/S1/z.csv.gz", {**base, "log-start-utc": "soon"})
    with pytest.raises(InvalidRecord, match="not ISO 8601"):
        record_from_object(junk_time, buckets)
    archive = _put(store, "archive", "r1/S1/u1/file.bin", base)
    with pytest.raises(InvalidRecord, match="not a raw, analytics or crash bucket"):
        record_from_object(archive, buckets)
    fine = _put(store, "raw", "r1/S1/ok.csv.gz", base)
    with pytest.raises(InvalidRecord, match="expected 'r2'"):
        record_from_object(fine, buckets, rider=Rider("r2", UserType.PRIVATE))
    assert kind_for_bucket(BucketNames(crash="crashes"), "crashes") is ObjectKind.CRASH


def test_open_catalog_by_url(tmp_path: Path) -> None:
    sqlite = open_catalog(f"sqlite:{tmp_path}/a.db")
    assert isinstance(sqlite, SqliteCatalog) and sqlite.path == tmp_path / "a.db"
    absolute = open_catalog(f"sqlite://{tmp_path}/b.db")  # sqlite:///tmp/...
    assert isinstance(absolute, SqliteCatalog) and absolute.path == tmp_path / "b.db"
    postgres = open_catalog("postgresql://u:secret@db.example:6543/cat", schema="s1")
    assert isinstance(postgres, PostgresCatalog)
    assert postgres.name == "postgresql:db.example:6543/cat?schema=s1"
    assert "secret" not in postgres.name
    for bad in ("mysql://x", "sqlite:", "catalog.db"):
        with pytest.raises(ValueError):
            open_catalog(bad)
    with pytest.raises(ValueError, match="schema"):
        open_catalog(f"sqlite:{tmp_path}/c.db", schema="s1")
    with pytest.raises(ValueError, match="schema"):
        PostgresCatalog("postgresql://u@h/db", schema="Robert'); DROP")
    with pytest.raises(ValueError, match="memory"):
        SqliteCatalog(":memory:")
