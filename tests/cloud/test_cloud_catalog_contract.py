"""One catalog contract, run against SQLite and a real PostgreSQL server."""

from __future__ import annotations

import dataclasses
import datetime as dt
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from cloud_helpers import T0, ManualClock, make_record

from cloud_coordinator.catalog import (
    MAX_PAGE_LIMIT,
    Catalog,
    CatalogObject,
    CatalogSchemaError,
    CatalogUnavailable,
    InvalidCursor,
    InvalidRecord,
    Migration,
    ObjectFilter,
    ObjectKind,
    PostgresCatalog,
    RetentionPolicy,
    Rider,
    SqliteCatalog,
    UpsertOutcome,
    UserType,
    iter_pages,
)
from cloud_coordinator.catalog.schema import POSTGRES_MIGRATIONS, SQLITE_MIGRATIONS

Factory = Callable[..., Catalog]


def _all(catalog: Catalog, query: ObjectFilter, limit: int = 7) -> list[CatalogObject]:
    return list(
        iter_pages(
            lambda cursor: catalog.list_objects(query, limit=limit, cursor=cursor),
            max_pages=1000,
        )
    )


class CatalogContract:
    """What every catalog backend must do; subclasses provide ``factory``."""

    MIGRATIONS: tuple[Migration, ...] = ()
    BAD_STATEMENT = "CREATE TABLE broken (x nonsense_type_zzz"

    @pytest.fixture
    def factory(self) -> Iterator[Factory]:
        raise NotImplementedError

    @pytest.fixture
    def catalog(self, factory: Factory) -> Catalog:
        catalog = factory()
        catalog.migrate()
        return catalog

    # -- migrations -------------------------------------------------------------

    def test_migrate_applies_once_and_reruns_harmlessly(self, factory: Factory) -> None:
        first = factory()
        assert first.schema_version() == 0
        assert first.migrate() == [m.version for m in self.MIGRATIONS]
        assert first.migrate() == []
        first.upsert_object(make_record(log="kept"))
        # A second process starting on the same database changes nothing.
        second = factory()
        assert second.migrate() == []
        assert second.schema_version() == self.MIGRATIONS[-1].version
        assert [o.log_id for o in _all(second, ObjectFilter())] == ["kept"]

    def test_migrate_applies_only_new_versions(self, factory: Factory) -> None:
        factory().migrate()
        extra = Migration(
            len(self.MIGRATIONS) + 1,
            "notes table",
            ("CREATE TABLE notes (note_id INTEGER PRIMARY KEY, body TEXT)",),
        )
        upgraded = factory(migrations=(*self.MIGRATIONS, extra))
        assert upgraded.migrate() == [extra.version]
        assert upgraded.schema_version() == extra.version
        assert upgraded.migrate() == []

    def test_failed_migration_leaves_nothing(self, factory: Factory) -> None:
        factory().migrate()
        good = Migration(
            len(self.MIGRATIONS) + 1, "good", ("CREATE TABLE good (x INT)",)
        )
        bad = Migration(len(self.MIGRATIONS) + 2, "bad", (self.BAD_STATEMENT,))
        broken = factory(migrations=(*self.MIGRATIONS, good, bad))
        with pytest.raises(CatalogSchemaError, match=r"migration .* failed"):
            broken.migrate()
        # The whole batch rolled back: "good" is neither recorded nor created.
        assert broken.schema_version() == len(self.MIGRATIONS)
        assert factory(migrations=(*self.MIGRATIONS, good)).migrate() == [good.version]

    def test_database_newer_than_code_is_refused(self, factory: Factory) -> None:
        extra = Migration(
            len(self.MIGRATIONS) + 1, "future", ("CREATE TABLE f (x INT)",)
        )
        factory(migrations=(*self.MIGRATIONS, extra)).migrate()
        with pytest.raises(CatalogSchemaError, match="newer than this software"):
            factory().migrate()

    def test_renamed_migration_is_refused(self, factory: Factory) -> None:
        factory().migrate()
        renamed = (
            dataclasses.replace(self.MIGRATIONS[0], name="other"),
            *self.MIGRATIONS[1:],
        )
        with pytest.raises(CatalogSchemaError, match="another schema history"):
            factory(migrations=renamed).migrate()

    def test_concurrent_migrations_apply_once(self, factory: Factory) -> None:
        results: list[list[int]] = []
        errors: list[BaseException] = []

        def run() -> None:
            try:
                results.append(factory().migrate())
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=run) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert not errors
        every = [migration.version for migration in self.MIGRATIONS]
        assert sorted(results, key=len) == [[], [], [], every]

    # -- upserts ------------------------------------------------------------------

    def test_upsert_is_idempotent(self, catalog: Catalog) -> None:
        record = make_record()
        first = catalog.upsert_object(record)
        again = catalog.upsert_object(record)
        assert first.outcome is UpsertOutcome.INSERTED
        assert again.outcome is UpsertOutcome.UNCHANGED
        assert again.object == first.object
        assert len(_all(catalog, ObjectFilter())) == 1
        stored = catalog.get_object_by_key(record.bucket, record.key)
        assert stored == first.object
        assert stored.sha256_hex == record.sha256_hex
        assert stored.log_start == T0 and stored.sort_time == T0

    def test_upsert_learns_metadata_without_forgetting(
        self, catalog: Catalog, clock: ManualClock
    ) -> None:
        record = make_record(crash=None, user_type=None, model_version="1.0.0")
        first = catalog.upsert_object(record).object
        assert first.retention_until is not None  # unknown crash: raw kept 14 days
        clock.advance(hours=1)
        learnt = dataclasses.replace(record, crash=True, model_version=None)
        result = catalog.upsert_object(learnt)
        assert result.outcome is UpsertOutcome.UPDATED
        updated = result.object
        assert updated.object_id == first.object_id
        assert updated.crash is True
        assert updated.model_version == "1.0.0"  # None did not erase it
        assert updated.created_at == first.created_at
        assert updated.updated_at > first.updated_at
        assert updated.retention_until is None  # crash data is kept

    def test_upsert_of_new_content_replaces(self, catalog: Catalog) -> None:
        record = make_record()
        first = catalog.upsert_object(record).object
        replaced = catalog.upsert_object(
            dataclasses.replace(record, sha256_hex="f" * 64, size_bytes=99)
        )
        assert replaced.outcome is UpsertOutcome.REPLACED
        assert replaced.object.object_id == first.object_id
        assert replaced.object.sha256_hex == "f" * 64
        assert replaced.object.size_bytes == 99
        assert replaced.object.created_at == first.created_at

    def test_concurrent_upserts_of_one_key_make_one_row(self, catalog: Catalog) -> None:
        record = make_record()
        outcomes: list[UpsertOutcome] = []
        lock = threading.Lock()

        def run() -> None:
            result = catalog.upsert_object(record)
            with lock:
                outcomes.append(result.outcome)

        threads = [threading.Thread(target=run) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert sorted(outcomes) == sorted(
            [UpsertOutcome.INSERTED] + [UpsertOutcome.UNCHANGED] * 7
        )
        assert len(_all(catalog, ObjectFilter())) == 1

    @pytest.mark.parametrize(
        ("change", "message"),
        [
            ({"sha256_hex": "ABC"}, "sha256"),
            ({"sha256_hex": "A" * 64}, "sha256"),
            ({"rider_id": "a/b"}, "rider_id"),
            ({"suit_id": ".."}, "suit_id"),
            ({"log_id": "x\x00y"}, "log_id"),
            ({"log_id": "l" * 201}, "log_id"),
            ({"key": ""}, "key"),
            ({"bucket": "Raw_Bucket"}, "bucket"),
            ({"size_bytes": -1}, "size_bytes"),
            ({"log_start": dt.datetime(2026, 1, 1)}, "time zone"),
            ({"log_end": T0 - dt.timedelta(seconds=1)}, "before log_start"),
            ({"kind": "video"}, "video"),
        ],
    )
    def test_malformed_record_is_refused(
        self, catalog: Catalog, change: dict[str, Any], message: str
    ) -> None:
        with pytest.raises(InvalidRecord, match=message):
            catalog.upsert_object(dataclasses.replace(make_record(), **change))
        assert _all(catalog, ObjectFilter()) == []

    # -- retention ----------------------------------------------------------------

    def test_retention_dates_follow_the_policy(
        self, factory: Factory, clock: ManualClock
    ) -> None:
        catalog = factory(retention=RetentionPolicy(dt.timedelta(days=21)))
        catalog.migrate()
        private = catalog.upsert_object(make_record()).object
        assert private.retention_until == private.created_at + dt.timedelta(days=21)
        assert private.retention_open(private.created_at + dt.timedelta(days=20))
        assert not private.retention_open(private.created_at + dt.timedelta(days=21))
        kept = [
            make_record(user_type=UserType.PROFESSIONAL),
            make_record(crash=True),
            make_record(kind=ObjectKind.ANALYTICS),
            make_record(kind=ObjectKind.CRASH, crash=True),
        ]
        for record in kept:
            assert catalog.upsert_object(record).object.retention_until is None

    def test_given_creation_time_anchors_retention(self, catalog: Catalog) -> None:
        created = T0 - dt.timedelta(days=3)
        stored = catalog.upsert_object(make_record(created_at=created)).object
        assert stored.created_at == created
        assert stored.retention_until == created + dt.timedelta(days=14)

    # -- listings -----------------------------------------------------------------

    def test_filters_select_the_right_objects(self, catalog: Catalog) -> None:
        catalog.upsert_rider(Rider("p1", UserType.PROFESSIONAL, technician_id="t1"))
        catalog.upsert_rider(Rider("p2", UserType.PROFESSIONAL, technician_id="t2"))
        catalog.upsert_rider(Rider("q1", UserType.PRIVATE, technician_id="t1"))
        day = dt.timedelta(days=1)
        records = {
            "r1-raw": make_record(rider="r1", start=T0),
            "r1-ana": make_record(rider="r1", start=T0, kind=ObjectKind.ANALYTICS),
            "r1-crash": make_record(
                rider="r1", suit="SUIT-2", start=T0 + day, crash=True
            ),
            "r2-raw": make_record(rider="r2", start=T0 + 2 * day),
            "p1-raw": make_record(
                rider="p1", start=T0 + 3 * day, user_type=UserType.PROFESSIONAL
            ),
            "p2-crash": make_record(
                rider="p2",
                kind=ObjectKind.CRASH,
                crash=True,
                start=T0,
                user_type=UserType.PROFESSIONAL,
            ),
            "q1-raw": make_record(rider="q1", start=T0),
            "nostart": make_record(rider="r2", start=None),
        }
        ids = {
            name: catalog.upsert_object(record).object.object_id
            for name, record in records.items()
        }

        def names(**query: Any) -> set[str]:
            found = {o.object_id for o in _all(catalog, ObjectFilter(**query))}
            return {name for name, object_id in ids.items() if object_id in found}

        assert names(rider_id="r1") == {"r1-raw", "r1-ana", "r1-crash"}
        assert names(kind=ObjectKind.CRASH) == {"p2-crash"}
        assert names(kind=ObjectKind.RAW, rider_id="r1") == {"r1-raw", "r1-crash"}
        assert names(suit_id="SUIT-2") == {"r1-crash"}
        assert names(log_id=records["r2-raw"].log_id) == {"r2-raw"}
        assert names(crash=True) == {"r1-crash", "p2-crash"}
        assert names(crash=False, rider_id="r2") == {"r2-raw", "nostart"}
        assert names(user_type=UserType.PROFESSIONAL) == {"p1-raw", "p2-crash"}
        assert names(time_from=T0 + day, time_to=T0 + 3 * day) == {
            "r1-crash",
            "r2-raw",
        }
        assert "p1-raw" in names(time_from=T0 + 3 * day)
        assert "p1-raw" not in names(time_to=T0 + 3 * day)
        # A technician sees their professional riders only, never private ones.
        assert names(technician_id="t1") == {"p1-raw"}
        assert names(technician_id="t2", kind=ObjectKind.CRASH) == {"p2-crash"}
        assert names(technician_id="t1", rider_id="p2") == set()
        assert names(technician_id="nobody") == set()

    def test_listing_is_newest_first_with_ties_by_id(self, catalog: Catalog) -> None:
        same = [catalog.upsert_object(make_record(start=T0)).object for _ in range(3)]
        later = catalog.upsert_object(make_record(start=T0 + dt.timedelta(hours=1)))
        listed = _all(catalog, ObjectFilter(), limit=2)
        assert [o.object_id for o in listed] == [
            later.object.object_id,
            *sorted((o.object_id for o in same), reverse=True),
        ]

    def test_pages_are_stable_under_concurrent_inserts(self, catalog: Catalog) -> None:
        minute = dt.timedelta(minutes=1)
        originals = [
            catalog.upsert_object(make_record(start=T0 + i * minute)).object
            for i in range(25)
        ]
        query = ObjectFilter(kind=ObjectKind.RAW)
        seen: list[int] = []
        cursor = None
        pages = 0
        while True:
            page = catalog.list_objects(query, limit=10, cursor=cursor)
            seen += [o.object_id for o in page.items]
            pages += 1
            # Between pages, new objects land before, inside and after the
            # part already read, and at the exact sort time of the cursor.
            for start in (T0 + 100 * minute, T0 + 12 * minute, T0 - minute):
                catalog.upsert_object(make_record(start=start))
            if page.items:
                tie = page.items[-1].sort_time
                catalog.upsert_object(make_record(start=tie))
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
        assert len(seen) == len(set(seen)), "an object was listed twice"
        assert {o.object_id for o in originals} <= set(seen), "an object was skipped"
        assert pages <= 6

    def test_pages_with_a_writer_thread(self, catalog: Catalog) -> None:
        originals = {
            catalog.upsert_object(make_record()).object.object_id for _ in range(40)
        }
        stop = threading.Event()

        def write() -> None:
            for index in range(200):
                if stop.is_set():
                    return
                catalog.upsert_object(
                    make_record(start=T0 + dt.timedelta(seconds=index - 100))
                )

        writer = threading.Thread(target=write)
        writer.start()
        try:
            seen = [o.object_id for o in _all(catalog, ObjectFilter(), limit=3)]
        finally:
            stop.set()
            writer.join(timeout=60)
        assert len(seen) == len(set(seen))
        assert originals <= set(seen)

    def test_hard_page_limit(self, catalog: Catalog) -> None:
        for _ in range(MAX_PAGE_LIMIT + 1):
            catalog.upsert_object(make_record(start=T0))
        page = catalog.list_objects(ObjectFilter(), limit=10 * MAX_PAGE_LIMIT)
        assert len(page.items) == MAX_PAGE_LIMIT
        assert page.next_cursor is not None
        rest = catalog.list_objects(ObjectFilter(), limit=5, cursor=page.next_cursor)
        assert len(rest.items) == 1 and rest.next_cursor is None
        assert len(catalog.list_objects(ObjectFilter(), limit=0).items) == 1

    def test_cursor_is_tied_to_its_query(self, catalog: Catalog) -> None:
        for _ in range(3):
            catalog.upsert_object(make_record(rider="r1"))
        page = catalog.list_objects(ObjectFilter(rider_id="r1"), limit=1)
        assert page.next_cursor is not None
        with pytest.raises(InvalidCursor, match="different query"):
            catalog.list_objects(
                ObjectFilter(rider_id="r2"), limit=1, cursor=page.next_cursor
            )
        for junk in ("", "x", "!!!!", "eyJ2IjoxfQ", "A" * 2000):
            with pytest.raises(InvalidCursor):
                catalog.list_objects(ObjectFilter(rider_id="r1"), limit=1, cursor=junk)

    def test_get_object_respects_scope(self, catalog: Catalog) -> None:
        mine = catalog.upsert_object(make_record(rider="r1")).object
        assert catalog.get_object(mine.object_id) == mine
        assert catalog.get_object(mine.object_id, ObjectFilter(rider_id="r1")) == mine
        assert catalog.get_object(mine.object_id, ObjectFilter(rider_id="r2")) is None
        assert catalog.get_object(mine.object_id + 1000) is None

    def test_log_analytics_pointer(self, catalog: Catalog) -> None:
        raw = catalog.upsert_object(make_record(rider="r1", log="L1")).object
        assert catalog.get_log_analytics("L1") is None
        ana = catalog.upsert_object(
            make_record(rider="r1", log="L1", kind=ObjectKind.ANALYTICS)
        ).object
        other = catalog.upsert_object(
            make_record(
                rider="r1",
                suit="SUIT-9",
                log="L1",
                kind=ObjectKind.ANALYTICS,
                start=T0 - dt.timedelta(days=1),
            )
        ).object
        assert raw.kind is ObjectKind.RAW
        assert catalog.get_log_analytics("L1") == ana  # the newest
        assert catalog.get_log_analytics("L1", ObjectFilter(suit_id="SUIT-9")) == other
        assert catalog.get_log_analytics("L1", ObjectFilter(rider_id="r2")) is None
        with pytest.raises(InvalidRecord):
            catalog.get_log_analytics("../L1")

    # -- riders -------------------------------------------------------------------

    def test_riders_and_technicians(self, catalog: Catalog) -> None:
        assert catalog.get_rider("p1") is None
        catalog.upsert_rider(Rider("p1", UserType.PRIVATE))
        changed = Rider("p1", UserType.PROFESSIONAL, "extended", "t1")
        assert catalog.upsert_rider(changed) == changed
        assert catalog.get_rider("p1") == changed
        for index in range(5):
            catalog.upsert_rider(
                Rider(f"p{index + 2}", UserType.PROFESSIONAL, technician_id="t1")
            )
        catalog.upsert_rider(Rider("x1", UserType.PRIVATE, technician_id="t1"))
        mine = list(
            iter_pages(
                lambda cursor: catalog.list_riders(
                    technician_id="t1", limit=2, cursor=cursor
                ),
                max_pages=10,
            )
        )
        assert [r.rider_id for r in mine] == [f"p{i}" for i in range(1, 7)]
        everyone = catalog.list_riders(limit=100)
        assert len(everyone.items) == 7 and everyone.next_cursor is None
        with pytest.raises(InvalidRecord):
            catalog.upsert_rider(Rider("p/1", UserType.PRIVATE))
        with pytest.raises(InvalidCursor):
            catalog.list_riders(
                limit=2,
                cursor=catalog.list_riders(technician_id="t1", limit=1).next_cursor,
            )

    def test_rider_type_change_reaches_their_objects(self, catalog: Catalog) -> None:
        unknown = catalog.upsert_object(make_record(rider="n1", user_type=None)).object
        crashed = catalog.upsert_object(make_record(rider="n1", crash=True)).object
        other = catalog.upsert_object(make_record(rider="n2")).object
        assert unknown.retention_until is not None and crashed.retention_until is None

        catalog.upsert_rider(Rider("n1", UserType.PROFESSIONAL, "extended", "t1"))
        now_pro = catalog.get_object(unknown.object_id)
        assert now_pro is not None
        assert now_pro.user_type is UserType.PROFESSIONAL
        assert now_pro.product == "extended" and now_pro.retention_until is None
        assert now_pro.created_at == unknown.created_at
        assert catalog.get_object(other.object_id) == other

        catalog.upsert_rider(Rider("n1", UserType.PRIVATE))
        back = catalog.get_object(unknown.object_id)
        assert back is not None and back.user_type is UserType.PRIVATE
        assert back.product == "extended"  # None keeps the known product
        assert back.retention_until == unknown.retention_until
        still_kept = catalog.get_object(crashed.object_id)
        assert still_kept is not None and still_kept.retention_until is None
        assert (
            catalog.list_objects(ObjectFilter(technician_id="t1"), limit=10).items == []
        )

    # -- lifecycle ----------------------------------------------------------------

    def test_ping_and_close(self, catalog: Catalog) -> None:
        catalog.ping()
        catalog.close()
        with pytest.raises(CatalogUnavailable):
            catalog.ping()


class TestSqliteCatalog(CatalogContract):
    MIGRATIONS = SQLITE_MIGRATIONS

    @pytest.fixture
    def factory(self, tmp_path: Path, clock: ManualClock) -> Iterator[Factory]:
        made: list[Catalog] = []

        def make(**kwargs: Any) -> Catalog:
            catalog = SqliteCatalog(tmp_path / "catalog.db", clock=clock, **kwargs)
            made.append(catalog)
            return catalog

        yield make
        for catalog in made:
            catalog.close()

    def test_journal_mode_is_wal(self, catalog: Catalog) -> None:
        assert isinstance(catalog, SqliteCatalog)
        assert catalog.journal_mode() == "wal"


class TestPostgresCatalog(CatalogContract):
    MIGRATIONS = POSTGRES_MIGRATIONS

    @pytest.fixture
    def factory(self, catalog_database: str, clock: ManualClock) -> Iterator[Factory]:
        schema = f"t_{uuid.uuid4().hex[:12]}"
        made: list[Catalog] = []

        def make(**kwargs: Any) -> Catalog:
            catalog = PostgresCatalog(
                catalog_database, schema=schema, clock=clock, **kwargs
            )
            made.append(catalog)
            return catalog

        yield make
        for catalog in made:
            catalog.close()

    def test_bulk_load_then_upserts(self, catalog: Catalog) -> None:
        assert isinstance(catalog, PostgresCatalog)
        records = [make_record(start=T0 + dt.timedelta(seconds=i)) for i in range(50)]
        assert catalog.bulk_insert_objects(records) == 50
        assert catalog.upsert_object(records[0]).outcome is UpsertOutcome.UNCHANGED
        listed = _all(catalog, ObjectFilter(), limit=20)
        assert [o.key for o in listed] == [r.key for r in reversed(records)]
        with pytest.raises(Exception, match="duplicate key"):
            catalog.bulk_insert_objects(records[:1])

    def test_unreachable_server_is_unavailable(self, clock: ManualClock) -> None:
        # A port nothing listens on: bind, note the number, close.
        import socket

        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        catalog = PostgresCatalog(
            f"postgresql://postgres@127.0.0.1:{port}/none",
            clock=clock,
            connect_timeout_s=1,
        )
        with pytest.raises(CatalogUnavailable, match="cannot connect"):
            catalog.ping()
