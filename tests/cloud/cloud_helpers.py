"""Helpers of the cloud tests: a settable clock, records, stored test logs."""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import json
import threading
import uuid
from dataclasses import dataclass, field
from typing import Any

from cloud_coordinator.catalog import (
    Catalog,
    CatalogObject,
    ObjectKind,
    ObjectRecord,
    Rider,
    UserType,
    record_from_object,
)
from edge_agent.upload import (
    BodyChecksum,
    BucketNames,
    ChecksumMode,
    ObjectLayout,
    ObjectMetadata,
    ObjectStore,
)

T0 = dt.datetime(2026, 3, 1, 8, 0, tzinfo=dt.UTC)


class ManualClock:
    """A clock tests move by hand; each reading is 1 microsecond later."""

    def __init__(self, start: dt.datetime = T0) -> None:
        self._now = start
        self._lock = threading.Lock()

    def __call__(self) -> dt.datetime:
        with self._lock:
            self._now += dt.timedelta(microseconds=1)
            return self._now

    def advance(self, **delta: float) -> None:
        """Move the clock forward by ``timedelta(**delta)``."""
        with self._lock:
            self._now += dt.timedelta(**delta)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def make_record(
    *,
    rider: str = "r1",
    suit: str = "SUIT-1",
    log: str | None = None,
    kind: ObjectKind = ObjectKind.RAW,
    start: dt.datetime | None = T0,
    crash: bool | None = False,
    user_type: UserType | None = UserType.PRIVATE,
    digest: str | None = None,
    bucket: str | None = None,
    key: str | None = None,
    size_bytes: int = 1234,
    **extra: Any,
) -> ObjectRecord:
    """Return a valid record; keys follow the gateway's layout."""
    log = log or uuid.uuid4().hex
    layout = ObjectLayout()
    if kind is ObjectKind.RAW:
        ref = layout.raw_csv(rider, suit, (start or T0).date(), log)
        object_type = "raw_csv"
    elif kind is ObjectKind.ANALYTICS:
        ref = layout.analytics(rider, suit, log)
        object_type = "analytics"
    else:
        ref = layout.crash(rider, suit, log, f"{log}.csv.gz")
        object_type = "crash_raw_csv"
    return ObjectRecord(
        bucket=bucket or ref.bucket,
        key=key or ref.key,
        kind=kind,
        object_type=object_type,
        rider_id=rider,
        suit_id=suit,
        log_id=log,
        sha256_hex=digest or sha(f"{ref}".encode()),
        size_bytes=size_bytes,
        user_type=user_type,
        log_start=start,
        log_end=None if start is None else start + dt.timedelta(minutes=30),
        crash=crash,
        **extra,
    )


@dataclass
class StoredLog:
    """A log put into a store and catalogued like ingest would."""

    rider: str
    suit: str
    log: str
    analytics: dict[str, Any]
    csv_gz: bytes
    objects: dict[str, CatalogObject] = field(default_factory=dict)


def analytics_document(
    rider: str, suit: str, log: str, start: dt.datetime, crash: bool
) -> dict[str, Any]:
    """Return a ride-analytics/1 document of a 30-minute ride."""
    return {
        "schema": "ride-analytics/1",
        "log_id": log,
        "suit_id": suit,
        "rider_id": rider,
        "start_utc": start.isoformat(),
        "end_utc": (start + dt.timedelta(minutes=30)).isoformat(),
        "duration_s": 1800.0,
        "samples": 180_000,
        "sample_rate_hz": 100.0,
        "max_accel_g": 2.5,
        "crash": {"detected": crash, "events": []},
        "model": {"name": "crash-detector", "version": "1.0.0", "sha256": "0" * 64},
        "software_version": "0.1.0",
    }


def store_log(
    store: ObjectStore,
    catalog: Catalog,
    buckets: BucketNames,
    *,
    rider: Rider,
    suit: str,
    start: dt.datetime,
    crash: bool = False,
    log: str | None = None,
) -> StoredLog:
    """Put a log's CSV, analytics (and crash copy) in ``store``; catalogue them.

    Objects carry the gateway's metadata; catalog records are made from a
    HEAD of each stored object, as ingest and reconciliation do.
    """
    log = log or uuid.uuid4().hex
    layout = ObjectLayout(buckets)
    document = analytics_document(rider.rider_id, suit, log, start, crash)
    csv_gz = gzip.compress(f"t_s,ax_g\n0.0,0.01\n# {log}\n".encode(), mtime=0)
    body_json = json.dumps(document).encode()
    refs = [
        ("raw_csv", layout.raw_csv(rider.rider_id, suit, start.date(), log), csv_gz),
        ("analytics", layout.analytics(rider.rider_id, suit, log), body_json),
    ]
    if crash:
        refs.append(
            (
                "crash_raw_csv",
                layout.crash(rider.rider_id, suit, log, f"{log}.csv.gz"),
                csv_gz,
            )
        )
    stored = StoredLog(rider.rider_id, suit, log, document, csv_gz)
    for name, ref, data in refs:
        metadata = ObjectMetadata(
            sha256_hex=sha(data),
            log_id=log,
            suit_id=suit,
            rider_id=rider.rider_id,
            kind=name,
            log_start_utc=document["start_utc"],
            log_end_utc=document["end_utc"],
            sample_count=document["samples"],
            software_version="0.1.0",
            model_version="1.0.0",
        )
        store.ensure_bucket(ref.bucket)
        store.put_object(
            ref.bucket,
            ref.key,
            data,
            metadata=metadata.to_s3(),
            checksum=BodyChecksum.of(data, ChecksumMode.MD5),
            content_type="application/json" if name == "analytics" else "text/csv",
        )
        info = store.head_object(ref.bucket, ref.key)
        assert info is not None
        record = record_from_object(info, buckets, rider=rider, crash=crash)
        stored.objects[name] = catalog.upsert_object(record).object
    return stored
