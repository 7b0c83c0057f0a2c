"""Catalog contract of migration 3 (audit, retention, verdicts, jobs), both backends."""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from cloud_helpers import T0, ManualClock, make_record

from cloud_coordinator.catalog import (
    AuditAction,
    AuditEntry,
    Catalog,
    CatalogObject,
    CrashVerdictRecord,
    InvalidRecord,
    JobRecord,
    JobState,
    ObjectKind,
    PostgresCatalog,
    RetentionPolicy,
    Rider,
    SqliteCatalog,
    UserType,
    Verdict,
    iter_pages,
)

DAY = dt.timedelta(days=1)
POLICY = RetentionPolicy(dt.timedelta(days=14))


def _pair(item: CatalogObject) -> tuple[dt.datetime, int]:
    assert item.retention_until is not None
    return (item.retention_until, item.object_id)


def _audit(catalog: Catalog, rider: str | None = None) -> list[AuditEntry]:
    return list(
        iter_pages(
            lambda cursor: catalog.list_audit(rider_id=rider, limit=2, cursor=cursor),
            max_pages=100,
        )
    )


class LifecycleContract:
    """What every backend does for retention, audit, verdicts and jobs."""

    @pytest.fixture
    def catalog(self) -> Iterator[Catalog]:
        raise NotImplementedError

    def _raw(self, catalog: Catalog, **fields: object) -> CatalogObject:
        record = make_record(**fields)  # type: ignore[arg-type]
        return catalog.upsert_object(record).object

    def test_expired_raw_follows_the_policy(self, catalog: Catalog) -> None:
        plain = self._raw(catalog, rider="r1", created_at=T0)
        crashed = self._raw(catalog, rider="r1", crash=True, created_at=T0)
        # A raw object without a crash flag whose log has a crash object.
        sibling = self._raw(catalog, rider="r1", created_at=T0)
        catalog.upsert_object(
            make_record(rider="r1", log=sibling.log_id, kind=ObjectKind.CRASH)
        )
        catalog.upsert_object(make_record(rider="r1", kind=ObjectKind.ANALYTICS))
        young = self._raw(catalog, rider="r1", created_at=T0 + 10 * DAY)
        pro = self._raw(catalog, rider="p1", created_at=T0)
        catalog.upsert_rider(Rider("p1", UserType.PRIVATE))
        pro = catalog.get_object(pro.object_id) or pro
        assert pro.retention_until is not None
        # Nothing unannounced may go; announce every raw object's date.
        assert catalog.list_expired_raw(T0 + 15 * DAY, limit=100) == []
        raws = [plain, crashed, sibling, young, pro]
        catalog.mark_retention_notified(raws, T0)

        due = catalog.list_expired_raw(T0 + 15 * DAY, limit=100)
        assert {o.object_id for o in due} == {plain.object_id, pro.object_id}
        assert crashed.retention_until is None
        assert young.object_id not in {o.object_id for o in due}

        # The registry wins over a stale row: a professional rider keeps data.
        catalog.upsert_rider(Rider("p1", UserType.PROFESSIONAL, None, "t1"))
        due = catalog.list_expired_raw(T0 + 15 * DAY, limit=100)
        assert [o.object_id for o in due] == [plain.object_id]
        assert (
            catalog.list_expired_raw(T0 + 15 * DAY, limit=1, after=_pair(plain)) == []
        )

    def test_delete_is_audited_and_guarded(self, catalog: Catalog) -> None:
        item = self._raw(catalog, created_at=T0)
        entry = AuditEntry(AuditAction.RETENTION_DELETE, "retention")
        # Expired but never announced: the guard keeps it.
        later = T0 + 15 * DAY
        assert catalog.delete_object(item.object_id, entry, expired_at=later) is None
        assert catalog.get_object(item.object_id) is not None
        assert catalog.mark_retention_notified([item], T0) == 1
        notices = _audit(catalog)
        assert [(e.action, e.object_id) for e in notices] == [
            (AuditAction.RETENTION_NOTICE, item.object_id)
        ]
        # Not yet expired: the guard keeps it.
        assert catalog.delete_object(item.object_id, entry, expired_at=T0) is None
        assert catalog.get_object(item.object_id) is not None

        # A failing store delete undoes the catalog delete and its audit.
        def fail(_: CatalogObject) -> None:
            raise OSError("store down")

        with pytest.raises(OSError):
            catalog.delete_object(
                item.object_id, entry, expired_at=T0 + 15 * DAY, before_commit=fail
            )
        assert catalog.get_object(item.object_id) is not None
        assert _audit(catalog) == notices

        seen: list[int] = []
        deleted = catalog.delete_object(
            item.object_id,
            entry,
            expired_at=T0 + 15 * DAY,
            before_commit=lambda row: seen.append(row.object_id),
        )
        assert deleted is not None and seen == [item.object_id]
        assert catalog.get_object(item.object_id) is None
        # Idempotent: a second delete finds nothing and audits nothing.
        assert catalog.delete_object(item.object_id, entry) is None
        (_, audited) = _audit(catalog)
        assert audited.action is AuditAction.RETENTION_DELETE
        assert (audited.bucket, audited.key) == (item.bucket, item.key)
        assert audited.sha256_hex == item.sha256_hex
        assert audited.size_bytes == item.size_bytes
        assert audited.at is not None and audited.audit_id is not None

    def test_notices_are_due_once_per_date(self, catalog: Catalog) -> None:
        first = self._raw(catalog, created_at=T0)
        later = self._raw(catalog, created_at=T0 + 5 * DAY)
        now = T0 + 12 * DAY
        due = catalog.list_retention_notices_due(now, now + 3 * DAY, limit=10)
        assert [o.object_id for o in due] == [first.object_id]
        assert catalog.mark_retention_notified(due, now) == 1
        assert catalog.list_retention_notices_due(now, now + 3 * DAY, limit=10) == []
        due = catalog.list_retention_notices_due(now, now + 10 * DAY, limit=10)
        assert [o.object_id for o in due] == [later.object_id]

    def test_late_notice_moves_the_window(self, catalog: Catalog) -> None:
        item = self._raw(catalog, rider="r1", created_at=T0)
        assert item.retention_until is not None
        now = T0 + 30 * DAY  # the date passed without a notice
        assert catalog.list_expired_raw(now, limit=10) == []
        (due,) = catalog.list_retention_notices_due(now, now + 3 * DAY, limit=10)
        assert due.object_id == item.object_id
        announced = dataclasses.replace(due, retention_until=now + 3 * DAY)
        assert catalog.mark_retention_notified([announced], now) == 1
        moved = catalog.get_object(item.object_id)
        assert moved is not None and moved.retention_until == now + 3 * DAY
        assert catalog.list_retention_notices_due(now, now + 3 * DAY, limit=10) == []
        assert catalog.list_expired_raw(now + 2 * DAY, limit=10) == []
        entry = AuditEntry(AuditAction.RETENTION_DELETE, "retention")
        assert catalog.delete_object(item.object_id, entry, expired_at=now) is None
        (notice,) = _audit(catalog, "r1")
        assert notice.action is AuditAction.RETENTION_NOTICE
        assert notice.detail is not None
        assert (now + 3 * DAY).isoformat() in notice.detail
        # An earlier announced date never shortens the window.
        catalog.mark_retention_notified([due], now)
        kept = catalog.get_object(item.object_id)
        assert kept is not None and kept.retention_until == now + 3 * DAY
        # A re-upload or a rider update recomputes the date: the announced
        # one is kept, so the window never closes before the rider was told.
        again = catalog.upsert_object(make_record(rider="r1", log=item.log_id))
        assert again.object.object_id == item.object_id
        assert again.object.retention_until == now + 3 * DAY
        catalog.upsert_rider(Rider("r1", UserType.PROFESSIONAL, None, "t1"))
        catalog.upsert_rider(Rider("r1", UserType.PRIVATE))
        back = catalog.get_object(item.object_id)
        assert back is not None and back.retention_until == now + 3 * DAY
        expired = catalog.list_expired_raw(now + 3 * DAY, limit=10)
        assert [o.object_id for o in expired] == [item.object_id]
        assert (
            catalog.delete_object(item.object_id, entry, expired_at=now + 3 * DAY)
            is not None
        )

    def test_audit_pages_and_rider_filter(self, catalog: Catalog) -> None:
        for index in range(5):
            catalog.record_audit(
                AuditEntry(AuditAction.EXPORT, "admin:a", rider_id=f"r{index % 2}")
            )
        everything = _audit(catalog)
        assert len(everything) == 5
        ids = [e.audit_id or 0 for e in everything]
        assert ids == sorted(ids) and 0 not in ids
        assert len(_audit(catalog, "r0")) == 3
        with pytest.raises(InvalidRecord):
            catalog.record_audit(AuditEntry(AuditAction.EXPORT, ""))

    def test_crash_verdicts(self, catalog: Catalog) -> None:
        assert catalog.get_crash_verdict("r1", "S", "L") is None
        first = CrashVerdictRecord(
            "r1", "S", "L", Verdict.CONFIRMED, "rnd:x", str(uuid.uuid4()), T0, 12.5
        )
        catalog.record_crash_verdict(first)
        second = dataclasses.replace(
            first,
            verdict=Verdict.REJECTED,
            command_id=str(uuid.uuid4()),
            gateway_id="gw-1",
        )
        catalog.record_crash_verdict(second)
        newest = catalog.get_crash_verdict("r1", "S", "L")
        assert newest is not None and newest.verdict is Verdict.REJECTED
        assert newest.published_at is None and newest.gateway_id == "gw-1"
        catalog.mark_verdict_published(second.command_id, T0 + DAY)
        newest = catalog.get_crash_verdict("r1", "S", "L")
        assert newest is not None and newest.published_at == T0 + DAY
        assert [e.action for e in _audit(catalog)] == [AuditAction.CRASH_VERDICT] * 2
        with pytest.raises(InvalidRecord):
            catalog.record_crash_verdict(dataclasses.replace(first, t_offset_s=-1.0))

    def test_jobs_round_trip(self, catalog: Catalog) -> None:
        job = JobRecord(
            job_id=uuid.uuid4().hex,
            kind="analytics",
            state=JobState.QUEUED,
            requested_by="rider:r1",
            rider_id="r1",
            suit_id="S",
            source_bucket="archive",
            source_key="r1/S/u/ride.csv",
            created_at=T0,
            updated_at=T0,
        )
        catalog.insert_job(job)
        assert catalog.get_job(job.job_id) == job
        done = dataclasses.replace(
            job, state=JobState.SUCCEEDED, log_id="L", result={"seconds": 1.5}
        )
        catalog.update_job(done)
        assert catalog.get_job(job.job_id) == done
        assert catalog.get_job("missing") is None

    def test_erase_rider_records_keeps_audit(self, catalog: Catalog) -> None:
        catalog.upsert_rider(Rider("r1", UserType.PRIVATE))
        catalog.upsert_rider(Rider("r2", UserType.PRIVATE))
        catalog.record_crash_verdict(
            CrashVerdictRecord(
                "r1", "S", "L", Verdict.CONFIRMED, "rnd:x", str(uuid.uuid4()), T0
            )
        )
        counts = catalog.erase_rider_records("r1", "admin:a")
        assert counts["riders"] == 1 and counts["crash_verdicts"] == 1
        assert catalog.get_rider("r1") is None
        assert catalog.get_rider("r2") is not None
        assert catalog.get_crash_verdict("r1", "S", "L") is None
        actions = [e.action for e in _audit(catalog, "r1")]
        assert actions == [AuditAction.CRASH_VERDICT, AuditAction.RIDER_ERASED]


class TestSqliteLifecycle(LifecycleContract):
    @pytest.fixture
    def catalog(self, tmp_path: Path, clock: ManualClock) -> Iterator[Catalog]:
        catalog = SqliteCatalog(tmp_path / "c.db", clock=clock, retention=POLICY)
        catalog.migrate()
        yield catalog
        catalog.close()


class TestPostgresLifecycle(LifecycleContract):
    @pytest.fixture
    def catalog(self, catalog_database: str, clock: ManualClock) -> Iterator[Catalog]:
        catalog = PostgresCatalog(
            catalog_database,
            schema=f"t_{uuid.uuid4().hex[:12]}",
            clock=clock,
            retention=POLICY,
        )
        catalog.migrate()
        yield catalog
        catalog.close()
