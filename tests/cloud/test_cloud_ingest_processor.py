"""Ingest of gateway events and reconciliation, on real catalogs and stores."""

from __future__ import annotations

import json

import pytest
from cloud_gateway_emu import UploadedLog, upload_log
from cloud_helpers import T0, ManualClock

from cloud_coordinator.catalog import (
    Catalog,
    ObjectFilter,
    ObjectKind,
    Rider,
    UserType,
)
from cloud_coordinator.config import BrokerConfig
from cloud_coordinator.ingest import (
    BadEvent,
    BadObject,
    EventOutcome,
    EventProcessor,
    VerifyMode,
    reconcile,
)
from cloud_coordinator.notify import NotificationAudience, NotificationType
from edge_agent.upload import BodyChecksum, BucketNames, ChecksumMode, LocalDirStore

BUCKETS = BucketNames()


def _processor(
    catalog: Catalog, store: LocalDirStore, clock: ManualClock, **kwargs: object
) -> EventProcessor:
    return EventProcessor(
        catalog,
        store,
        broker=BrokerConfig(),
        clock=clock,
        **kwargs,  # type: ignore[arg-type]
    )


def _send(processor: EventProcessor, log: UploadedLog) -> list[EventOutcome]:
    return [
        processor.handle(log.topic(), event.to_payload().encode())
        for event in log.events()
    ]


def _notices(catalog: Catalog, rider: str = "r1") -> list[tuple[str, str]]:
    items = catalog.list_notifications(
        NotificationAudience("rider", rider_id=rider), after_seq=0, limit=100
    )
    return [(item.type.value, str(item.payload["log_id"])) for item in items]


def test_ingest_catalogues_a_log_once_with_its_gateway(
    any_catalog: Catalog, local_store: LocalDirStore, clock: ManualClock
) -> None:
    any_catalog.upsert_rider(Rider("r1", UserType.PRIVATE, "lightweight"))
    log = upload_log(local_store, BUCKETS, start=T0)
    processor = _processor(any_catalog, local_store, clock)

    assert _send(processor, log) == [EventOutcome.CATALOGUED]
    assert _send(processor, log) == [EventOutcome.DUPLICATE]

    items = any_catalog.list_objects(ObjectFilter(log_id=log.log), limit=10).items
    assert sorted(item.object_type for item in items) == ["analytics", "raw_csv"]
    for item in items:
        assert item.gateway_id == "gw-1"
        assert item.crash is False
        assert item.user_type is UserType.PRIVATE
        # Metrics are kept forever; raw data for the retention window.
        assert (item.retention_until is None) is (item.kind is ObjectKind.ANALYTICS)
    assert _notices(any_catalog) == [("analytics_ready", log.log)]
    assert processor.stats.snapshot()["events"] == 1
    assert processor.stats.snapshot()["duplicates"] == 1


def test_ingest_crash_log_is_kept_and_announced_once(
    any_catalog: Catalog, local_store: LocalDirStore, clock: ManualClock
) -> None:
    log = upload_log(local_store, BUCKETS, start=T0, crash=True)
    processor = _processor(any_catalog, local_store, clock)

    assert _send(processor, log) == [EventOutcome.CATALOGUED] * 2

    items = any_catalog.list_objects(ObjectFilter(log_id=log.log), limit=10).items
    assert sorted(item.kind.value for item in items) == ["analytics", "crash", "raw"]
    assert all(item.crash is True for item in items)
    assert all(item.retention_until is None for item in items)
    assert sorted(_notices(any_catalog)) == [
        ("analytics_ready", log.log),
        ("crash_detected", log.log),
    ]
    crash = any_catalog.list_notifications(
        NotificationAudience("rnd"), after_seq=0, limit=10
    )[-1]
    assert crash.type is NotificationType.CRASH_DETECTED
    assert crash.payload["events"] == [{"t_offset_s": 12.5, "probability": 0.97}]
    assert crash.payload["gateway_id"] == "gw-1"


def test_ingest_rejects_bad_events(
    sqlite_catalog: Catalog, local_store: LocalDirStore, clock: ManualClock
) -> None:
    processor = _processor(sqlite_catalog, local_store, clock)
    log = upload_log(local_store, BUCKETS, start=T0)
    good = log.events()[0].to_document()

    with pytest.raises(BadEvent, match="gateways/gw-1/events"):
        processor.handle(log.topic(), b"{not json")
    with pytest.raises(BadEvent, match="'sha256'"):
        processor.handle(log.topic(), json.dumps({**good, "sha256": "xyz"}).encode())
    with pytest.raises(BadEvent, match="published by 'gw-2'"):
        processor.handle("gateways/gw-2/events", json.dumps(good).encode())
    with pytest.raises(BadEvent, match="not a gateway events topic"):
        processor.handle("gateways/gw-1/status", json.dumps(good).encode())
    bad_keys = {**good, "object_keys": {"raw_csv": "no-bucket-separator"}}
    with pytest.raises(BadEvent, match="bucket/key"):
        processor.handle(log.topic(), json.dumps(bad_keys).encode())
    assert sqlite_catalog.list_objects(ObjectFilter(), limit=10).items == []


def test_ingest_rejects_missing_altered_or_foreign_objects(
    sqlite_catalog: Catalog, local_store: LocalDirStore, clock: ManualClock
) -> None:
    processor = _processor(sqlite_catalog, local_store, clock)

    missing = upload_log(local_store, BUCKETS, start=T0)
    bucket, _, key = missing.object_keys["analytics"].partition("/")
    local_store.delete_object(bucket, key)
    with pytest.raises(BadObject, match="not in the store"):
        _send(processor, missing)

    altered = upload_log(local_store, BUCKETS, start=T0)
    bucket, _, key = altered.object_keys["raw_csv"].partition("/")
    info = local_store.head_object(bucket, key)
    assert info is not None
    evil = b"not the bytes the gateway hashed"
    local_store.put_object(
        bucket,
        key,
        evil,
        metadata=info.metadata,
        checksum=BodyChecksum.of(evil, ChecksumMode.MD5),
    )
    with pytest.raises(BadObject, match="does not match the recorded"):
        _send(processor, altered)
    # Metadata-only verification trusts the store's SHA-256.
    trusting = _processor(
        sqlite_catalog, local_store, clock, verify=VerifyMode.METADATA
    )
    assert _send(trusting, altered) == [EventOutcome.CATALOGUED]

    other = upload_log(local_store, BUCKETS, start=T0, rider="r2")
    claimed = UploadedLog(**{**other.__dict__, "rider": "r1"})
    with pytest.raises(BadObject, match="metadata rider_id 'r2'"):
        _send(processor, claimed)


def test_ingest_reconciliation_finds_logs_whose_event_was_lost(
    any_catalog: Catalog, local_store: LocalDirStore, clock: ManualClock
) -> None:
    plain = upload_log(local_store, BUCKETS, start=T0)
    crashed = upload_log(local_store, BUCKETS, start=T0, crash=True)
    bucket = crashed.object_keys["analytics"].partition("/")[0]
    local_store.put_object(
        bucket,
        "r1/SUIT-1/broken.json",
        b"{}",
        metadata={"sha256": "0" * 64},
        checksum=BodyChecksum.of(b"{}", ChecksumMode.MD5),
    )

    report = reconcile(any_catalog, local_store, clock=clock)
    assert len(report.catalogued) == 5
    assert list(report.quarantined) == [f"{bucket}/r1/SUIT-1/broken.json"]
    again = reconcile(any_catalog, local_store, clock=clock)
    assert again.catalogued == [] and len(again.quarantined) == 1
    assert any_catalog.list_quarantine(limit=10)[0].times_seen == 2

    raw = any_catalog.list_objects(
        ObjectFilter(kind=ObjectKind.RAW, log_id=crashed.log), limit=1
    ).items[0]
    assert raw.crash is True and raw.retention_until is None and raw.gateway_id is None
    assert sorted(_notices(any_catalog)) == sorted(
        [
            ("analytics_ready", plain.log),
            ("analytics_ready", crashed.log),
            ("crash_detected", crashed.log),
        ]
    )

    # The late events add the gateway id and announce nothing twice.
    processor = _processor(any_catalog, local_store, clock)
    assert _send(processor, crashed) == [EventOutcome.CATALOGUED] * 2
    late = any_catalog.get_object(raw.object_id)
    assert late is not None and late.gateway_id == "gw-1"
    assert len(_notices(any_catalog)) == 3
