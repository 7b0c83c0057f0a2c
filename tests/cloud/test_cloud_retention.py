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


def _deletions(catalog: Catalog) -> list[Any]:
    return [
        entry
        for entry in catalog.list_audit(limit=100).items
        if entry.action is AuditAction.RETENTION_DELETE
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
    # The rider gets the full notice period: the window moves to day 15.
    assert dt.datetime.fromisoformat(notice.payload["delete_after"]) == T0 + 15 * DAY
    moved = catalog.get_object(world.plain.objects["raw_csv"].object_id)
    assert moved is not None and moved.retention_until == T0 + 15 * DAY
    # Announced once, however often the job runs.
    assert job.run(now=T0 + 12.5 * DAY).notified == []
    assert len(_notices(catalog, "r1")) == 1

    # Day 15, dry run: lists, changes nothing.
    dry = job.run(now=T0 + 15 * DAY, dry_run=True)
    assert {item.log_id for item in dry.deleted} == {world.plain.log, world.other.log}
    assert world.stored(world.plain, "raw_csv")
    assert world.catalogued(world.plain, "raw_csv")
    assert _deletions(catalog) == []

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
    key = world.plain.objects["raw_csv"].key
    assert [(e.action, e.key) for e in audit] == [
        (AuditAction.RETENTION_NOTICE, key),
        (AuditAction.RETENTION_DELETE, key),
    ]
    assert audit[1].sha256_hex == world.plain.objects["raw_csv"].sha256_hex

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
    assert len(job.run(now=T0 + 12 * DAY).notified) == 2
    report = job.run(now=T0 + 15 * DAY)
    assert len(report.failed) == 2 and report.deleted == []
    assert world.catalogued(world.plain, "raw_csv")
    assert _deletions(catalog) == []

    store.broken = False
    report = job.run(now=T0 + 15 * DAY)
    assert len(report.deleted) == 2 and report.failed == {}
    assert not world.stored(world.plain, "raw_csv")


def test_rider_turned_professional_before_the_run_keeps_data(
    catalog: Catalog, local_store: LocalDirStore, clock: ManualClock
) -> None:
    world = World(catalog, local_store)
    job = RetentionJob(catalog, local_store, clock=clock)
    assert len(job.run(now=T0 + 12 * DAY).notified) == 2
    catalog.upsert_rider(Rider("r1", UserType.PROFESSIONAL, None, "t1"))
    report = job.run(now=T0 + 30 * DAY)
    assert {item.rider_id for item in report.deleted} == {"r2"}
    assert world.stored(world.plain, "raw_csv")


def test_small_batches_page_through_everything(
    catalog: Catalog, local_store: LocalDirStore, clock: ManualClock
) -> None:
    World(catalog, local_store)
    job = RetentionJob(catalog, local_store, clock=clock, batch_size=1)
    assert len(job.run(now=T0 + 12 * DAY, dry_run=True).notified) == 2
    # Nothing was announced yet, so a dry run would delete nothing.
    assert job.run(now=T0 + 15 * DAY, dry_run=True).deleted == []
    assert len(job.run(now=T0 + 12 * DAY).notified) == 2
    assert len(job.run(now=T0 + 15 * DAY, dry_run=True).deleted) == 2
    assert len(job.run(now=T0 + 15 * DAY).deleted) == 2


def test_job_skipped_through_notice_window_announces_before_deleting(
    catalog: Catalog, local_store: LocalDirStore, clock: ManualClock
) -> None:
    """Issue 5: a job that did not run in the notice window deleted unannounced."""
    world = World(catalog, local_store)
    raw = world.plain.objects["raw_csv"]
    job = RetentionJob(catalog, local_store, notice_days=3, clock=clock)
    late = T0 + 31 * DAY  # the window closed on day 14; no run since

    # A dry run shows the notice and no deletion, and changes nothing.
    dry = job.run(now=late, dry_run=True)
    assert {item.log_id for item in dry.notified} == {world.plain.log, world.other.log}
    assert {item.retention_until for item in dry.notified} == {late + 3 * DAY}
    assert dry.deleted == []
    assert _notices(catalog, "r1") == []
    unchanged = catalog.get_object(raw.object_id)
    assert unchanged is not None and unchanged.retention_until == raw.retention_until

    # The late run tells the rider and deletes nothing.
    report = job.run(now=late)
    assert {item.log_id for item in report.notified} == {
        world.plain.log,
        world.other.log,
    }
    assert report.deleted == []
    assert world.stored(world.plain, "raw_csv")
    (notice,) = _notices(catalog, "r1")
    assert notice.payload["object_id"] == raw.object_id
    assert dt.datetime.fromisoformat(notice.payload["delete_after"]) == late + 3 * DAY
    # The download window is open again until the announced date.
    moved = catalog.get_object(raw.object_id)
    assert moved is not None and moved.retention_until == late + 3 * DAY
    assert moved.retention_open(late + 2 * DAY)
    notices = [
        entry
        for entry in catalog.list_audit(rider_id="r1", limit=10).items
        if entry.action is AuditAction.RETENTION_NOTICE
    ]
    assert [entry.object_id for entry in notices] == [raw.object_id]
    assert _deletions(catalog) == []

    # Not announced twice, not deleted before the notice period is over.
    again = job.run(now=late + 2 * DAY)
    assert again.notified == [] and again.deleted == []
    assert len(_notices(catalog, "r1")) == 1
    assert world.stored(world.plain, "raw_csv")

    # After it, deleted with its audit, once.
    report = job.run(now=late + 3 * DAY)
    assert {item.log_id for item in report.deleted} == {
        world.plain.log,
        world.other.log,
    }
    assert not world.stored(world.plain, "raw_csv")
    assert [entry.object_id for entry in _deletions(catalog)].count(raw.object_id) == 1
    final = job.run(now=late + 10 * DAY)
    assert final.notified == [] and final.deleted == []
