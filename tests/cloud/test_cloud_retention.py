"""The retention job on a real catalog (SQLite and PostgreSQL) and a local store."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cloud_helpers import T0, ManualClock, StoredLog, store_log

from cloud_coordinator.catalog import (
    AuditAction,
    Catalog,
    PostgresCatalog,
    RetentionPolicy,
    Rider,
    SqliteCatalog,
    UserType,
)
from cloud_coordinator.notify import NotificationAudience, NotificationType
from cloud_coordinator.retention import RetentionJob
from edge_agent.upload import BucketNames, LocalDirStore, ObjectStoreUnavailable

DAY = dt.timedelta(days=1)
POLICY = RetentionPolicy(dt.timedelta(days=14))
BUCKETS = BucketNames()


@pytest.fixture(params=["sqlite", "postgres"])
def catalog(
    request: pytest.FixtureRequest, tmp_path: Path, clock: ManualClock
) -> Iterator[Catalog]:
    made: Catalog
    if request.param == "sqlite":
        made = SqliteCatalog(tmp_path / "c.db", clock=clock, retention=POLICY)
    else:
        import uuid

        database = request.getfixturevalue("catalog_database")
        made = PostgresCatalog(
            database, schema=f"t_{uuid.uuid4().hex[:12]}", clock=clock, retention=POLICY
        )
    made.migrate()
    yield made
    made.close()


class World:
    """r1 (private) with a plain and a crash ride, p1 (professional), r2."""

    def __init__(self, catalog: Catalog, store: LocalDirStore) -> None:
        self.catalog, self.store = catalog, store
        riders = {
            "r1": Rider("r1", UserType.PRIVATE),
            "r2": Rider("r2", UserType.PRIVATE),
            "p1": Rider("p1", UserType.PROFESSIONAL, None, "t1"),
        }
        for rider in riders.values():
            catalog.upsert_rider(rider)

        def put(rider: str, crash: bool = False) -> StoredLog:
            return store_log(
                store,
                catalog,
                BUCKETS,
                rider=riders[rider],
                suit="S",
                start=T0,
                crash=crash,
            )

        self.plain, self.crash, self.pro = put("r1"), put("r1", True), put("p1")
        self.other = put("r2")

    def stored(self, log: StoredLog, name: str) -> bool:
        item = log.objects[name]
        return self.store.head_object(item.bucket, item.key) is not None

    def catalogued(self, log: StoredLog, name: str) -> bool:
        return self.catalog.get_object(log.objects[name].object_id) is not None


def _notices(catalog: Catalog, rider: str) -> list[Any]:
    audience = NotificationAudience(role="rider", rider_id=rider)
    return [
        n
        for n in catalog.list_notifications(audience, after_seq=0, limit=100)
        if n.type is NotificationType.RAW_DELETION_SCHEDULED
    ]


def test_notice_then_delete_keeps_crash_professional_and_analytics(
    catalog: Catalog, local_store: LocalDirStore, clock: ManualClock
) -> None:
    world = World(catalog, local_store)
    job = RetentionJob(catalog, local_store, notice_days=3, clock=clock)

    # Day 12: the two private plain rides are announced, nothing is deleted.
    report = job.run(now=T0 + 12 * DAY)
    announced = {item.log_id for item in report.notified}
    assert announced == {world.plain.log, world.other.log}
    assert report.deleted == []
    (notice,) = _notices(catalog, "r1")
    assert notice.payload["log_id"] == world.plain.log
    until = world.plain.objects["raw_csv"].retention_until
    assert until is not None and until - T0 < 14 * DAY + dt.timedelta(seconds=1)
    assert dt.datetime.fromisoformat(notice.payload["delete_after"]) == until
    # Announced once, however often the job runs.
    assert job.run(now=T0 + 12.5 * DAY).notified == []
    assert len(_notices(catalog, "r1")) == 1

    # Day 15, dry run: lists, changes nothing.
    dry = job.run(now=T0 + 15 * DAY, dry_run=True)
    assert {item.log_id for item in dry.deleted} == {world.plain.log, world.other.log}
    assert world.stored(world.plain, "raw_csv")
    assert world.catalogued(world.plain, "raw_csv")
    assert catalog.list_audit(limit=10).items == []

    # Day 15: deleted from store and catalog, audited; the rest untouched.
    report = job.run(now=T0 + 15 * DAY)
    assert {item.log_id for item in report.deleted} == {
        world.plain.log,
        world.other.log,
    }
    assert not world.stored(world.plain, "raw_csv")
    assert not world.catalogued(world.plain, "raw_csv")
    for log in (world.plain, world.crash, world.pro):
        assert world.stored(log, "analytics") and world.catalogued(log, "analytics")
    for log in (world.crash, world.pro):
        assert world.stored(log, "raw_csv") and world.catalogued(log, "raw_csv")
    assert world.stored(world.crash, "crash_raw_csv")
    audit = catalog.list_audit(rider_id="r1", limit=10).items
    assert [(e.action, e.key) for e in audit] == [
        (AuditAction.RETENTION_DELETE, world.plain.objects["raw_csv"].key)
    ]
    assert audit[0].sha256_hex == world.plain.objects["raw_csv"].sha256_hex

    # Idempotent: nothing left to do, even much later.
    again = job.run(now=T0 + 100 * DAY)
    assert again.deleted == [] and again.notified == [] and again.failed == {}


class FlakyDeletes(LocalDirStore):
    """A local store whose deletes fail while ``broken`` is set."""

    broken = True

    def delete_object(self, bucket: str, key: str) -> None:
        if self.broken:
            raise ObjectStoreUnavailable(f"delete {bucket}/{key}: store offline")
        super().delete_object(bucket, key)


def test_store_failure_keeps_object_for_next_run(
    catalog: Catalog, tmp_path: Path, clock: ManualClock
) -> None:
    store = FlakyDeletes(tmp_path / "flaky")
    world = World(catalog, store)
    job = RetentionJob(catalog, store, clock=clock, batch_size=1)
    report = job.run(now=T0 + 15 * DAY)
    assert len(report.failed) == 2 and report.deleted == []
    assert world.catalogued(world.plain, "raw_csv")
    assert catalog.list_audit(limit=10).items == []

    store.broken = False
    report = job.run(now=T0 + 15 * DAY)
    assert len(report.deleted) == 2 and report.failed == {}
    assert not world.stored(world.plain, "raw_csv")


def test_rider_turned_professional_before_the_run_keeps_data(
    catalog: Catalog, local_store: LocalDirStore, clock: ManualClock
) -> None:
    world = World(catalog, local_store)
    catalog.upsert_rider(Rider("r1", UserType.PROFESSIONAL, None, "t1"))
    report = RetentionJob(catalog, local_store, clock=clock).run(now=T0 + 30 * DAY)
    assert {item.rider_id for item in report.deleted} == {"r2"}
    assert world.stored(world.plain, "raw_csv")


def test_small_batches_page_through_everything(
    catalog: Catalog, local_store: LocalDirStore, clock: ManualClock
) -> None:
    World(catalog, local_store)
    job = RetentionJob(catalog, local_store, clock=clock, batch_size=1)
    assert len(job.run(now=T0 + 12 * DAY, dry_run=True).notified) == 2
    assert len(job.run(now=T0 + 15 * DAY, dry_run=True).deleted) == 2
    assert len(job.run(now=T0 + 12 * DAY).notified) == 2
    assert len(job.run(now=T0 + 15 * DAY).deleted) == 2
