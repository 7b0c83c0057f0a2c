"""The catalog logic shared by the SQLite and PostgreSQL backends.

A backend supplies a :class:`~.sql.Dialect`, its migration list and three
hooks: a transaction context manager that yields a DB-API cursor and maps
driver errors into :mod:`.errors`, the lock taken before migrating, and a
table-exists check. Everything else (upserts, keyset listings, riders,
migrations) is written once here.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol

from .cursor import decode_cursor, encode_cursor
from .device_registry import DeviceRegistrySql
from .errors import CatalogSchemaError
from .fl_sql import FederatedSql
from .ingestlog import IngestSql
from .interface import MAX_PAGE_LIMIT
from .lifecycle_sql import LifecycleSql
from .migrations import Migration, pending_migrations
from .model_registry import ModelRegistrySql
from .models import (
    CatalogObject,
    ObjectFilter,
    ObjectKind,
    ObjectRecord,
    Page,
    Rider,
    UpsertOutcome,
    UpsertResult,
    check_identifier,
)
from .outbox import OutboxSql
from .retention import RetentionPolicy
from .sql import (
    OBJECT_COLUMNS,
    RIDER_COLUMNS,
    Dialect,
    micros_to_time,
    object_from_row,
    object_where,
    rider_from_row,
    time_to_micros,
)

__all__ = ["DbCursor", "SqlCatalog", "iter_pages", "utc_now"]

_LOGGER = logging.getLogger(__name__)

_SELECT_OBJECTS = f"SELECT {', '.join(OBJECT_COLUMNS)} FROM objects"
_INSERT_COLUMNS = OBJECT_COLUMNS[1:]
# Columns an upsert may change on an existing row (id and first catalogued
# time stay).
_UPDATE_COLUMNS = tuple(
    column for column in _INSERT_COLUMNS if column not in ("created_at",)
)
# Optional fields where an upsert's None means "not known", which keeps the
# stored value rather than erasing it.
_MERGED_FIELDS = (
    "user_type",
    "product",
    "log_start",
    "log_end",
    "crash",
    "model_version",
    "software_version",
    "sample_count",
    "gateway_id",
)


def utc_now() -> dt.datetime:
    """Return the current time in UTC."""
    return dt.datetime.now(dt.UTC)


class DbCursor(Protocol):
    """The DB-API cursor subset the shared code uses."""

    def execute(self, query: Any, params: Any = ..., /) -> Any:
        """Run one statement."""
        ...

    def fetchone(self) -> Any:
        """Return the next row or None."""
        ...

    def fetchall(self) -> list[Any]:
        """Return the remaining rows."""
        ...


def _clamp(limit: int) -> int:
    return max(1, min(int(limit), MAX_PAGE_LIMIT))


class SqlCatalog(
    OutboxSql,
    IngestSql,
    LifecycleSql,
    DeviceRegistrySql,
    FederatedSql,
    ModelRegistrySql,
    ABC,
):
    """A :class:`~.interface.Catalog` on a SQL database; see the module doc."""

    def __init__(
        self,
        dialect: Dialect,
        migrations: Sequence[Migration],
        *,
        retention: RetentionPolicy | None = None,
        clock: Callable[[], dt.datetime] = utc_now,
    ) -> None:
        """Set the dialect, migration list, retention policy and clock."""
        self._dialect = dialect
        self._migrations = tuple(migrations)
        self._retention = retention or RetentionPolicy()
        self._clock = clock

    # -- backend hooks ------------------------------------------------------

    @property
    @abstractmethod
    def name(self) -> str:
        """Return a short description for log lines."""

    @abstractmethod
    def _transaction(self, *, write: bool) -> AbstractContextManager[DbCursor]:
        """Return a context that runs one transaction and yields its cursor."""

    @abstractmethod
    def _begin_migration(self, cursor: DbCursor) -> None:
        """Take the lock that serialises migrations (inside the transaction)."""

    @abstractmethod
    def _migrations_table_ddl(self) -> str:
        """Return the CREATE TABLE IF NOT EXISTS of ``schema_migrations``."""

    @abstractmethod
    def _table_exists(self, cursor: DbCursor, table: str) -> bool:
        """Return whether ``table`` exists."""

    @abstractmethod
    def _is_driver_error(self, exc: BaseException) -> bool:
        """Return whether ``exc`` is an error raised by the database driver."""

    @abstractmethod
    def close(self) -> None:
        """Release every connection."""

    # -- helpers --------------------------------------------------------------

    def _p(self, name: str) -> str:
        return self._dialect.p(name)

    def _now(self) -> dt.datetime:
        return self._clock().astimezone(dt.UTC)

    # -- schema ---------------------------------------------------------------

    def migrate(self) -> list[int]:
        """Apply pending schema migrations; return the versions applied."""
        with self._transaction(write=True) as cursor:
            self._begin_migration(cursor)
            cursor.execute(self._migrations_table_ddl())
            cursor.execute("SELECT version, name FROM schema_migrations")
            applied = {int(version): name for version, name in cursor.fetchall()}
            pending = pending_migrations(applied, self._migrations, self.name)
            for migration in pending:
                try:
                    for statement in migration.statements:
                        cursor.execute(statement)
                except Exception as exc:
                    if not self._is_driver_error(exc):
                        raise
                    raise CatalogSchemaError(
                        f"{self.name}: migration {migration.version} "
                        f"({migration.name}) failed, nothing applied: {exc}"
                    ) from exc
                cursor.execute(
                    "INSERT INTO schema_migrations (version, name, applied_at) "
                    f"VALUES ({self._p('v')}, {self._p('n')}, {self._p('t')})",
                    {
                        "v": migration.version,
                        "n": migration.name,
                        "t": self._dialect.time_in(self._now()),
                    },
                )
        versions = [migration.version for migration in pending]
        if versions:
            _LOGGER.info("%s: applied schema migrations %s", self.name, versions)
        return versions

    def schema_version(self) -> int:
        """Return the highest applied migration version (0: none)."""
        with self._transaction(write=False) as cursor:
            if not self._table_exists(cursor, "schema_migrations"):
                return 0
            cursor.execute("SELECT max(version) FROM schema_migrations")
            row = cursor.fetchone()
        return 0 if row is None or row[0] is None else int(row[0])

    def ping(self) -> None:
        """Check the database answers a query."""
        with self._transaction(write=False) as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()

    # -- objects --------------------------------------------------------------

    def _select_by_key(
        self, cursor: DbCursor, bucket: str, key: str, *, lock: bool
    ) -> CatalogObject | None:
        cursor.execute(
            f"{_SELECT_OBJECTS} WHERE bucket = {self._p('bucket')} "
            f"AND object_key = {self._p('key')}"
            + (self._dialect.for_update if lock else ""),
            {"bucket": bucket, "key": key},
        )
        row = cursor.fetchone()
        return None if row is None else object_from_row(self._dialect, row)

    def _row_params(
        self, record: ObjectRecord, created_at: dt.datetime, now: dt.datetime
    ) -> dict[str, Any]:
        time_in = self._dialect.time_in
        return {
            "bucket": record.bucket,
            "object_key": record.key,
            "kind": str(record.kind),
            "object_type": record.object_type,
            "rider_id": record.rider_id,
            "suit_id": record.suit_id,
            "log_id": record.log_id,
            "sha256": record.sha256_hex,
            "size_bytes": record.size_bytes,
            "user_type": None if record.user_type is None else str(record.user_type),
            "product": record.product,
            "log_start": time_in(record.log_start),
            "log_end": time_in(record.log_end),
            "sort_time": time_in(record.log_start or created_at),
            "crash": record.crash,
            "model_version": record.model_version,
            "software_version": record.software_version,
            "sample_count": record.sample_count,
            "created_at": time_in(created_at),
            "updated_at": time_in(now),
            "retention_until": time_in(
                self._retention.retention_until(record, created_at)
            ),
            "gateway_id": record.gateway_id,
        }

    @staticmethod
    def _merged(existing: CatalogObject, record: ObjectRecord) -> ObjectRecord:
        """Return ``record`` with its unknown (None) fields taken from the row."""
        changes = {
            name: getattr(existing, name)
            for name in _MERGED_FIELDS
            if getattr(record, name) is None
        }
        return dataclasses.replace(record, **changes)

    def upsert_object(self, record: ObjectRecord) -> UpsertResult:
        """Index ``record`` idempotently by bucket and key."""
        record = record.validated()
        now = self._now()
        columns = ", ".join(_INSERT_COLUMNS)
        with self._transaction(write=True) as cursor:
            existing = self._select_by_key(cursor, record.bucket, record.key, lock=True)
            if existing is None:
                created_at = record.created_at or now
                params = self._row_params(record, created_at, now)
                values = ", ".join(self._p(column) for column in _INSERT_COLUMNS)
                cursor.execute(
                    f"INSERT INTO objects ({columns}) VALUES ({values}) "
                    "ON CONFLICT (bucket, object_key) DO NOTHING "
                    f"RETURNING {', '.join(OBJECT_COLUMNS)}",
                    params,
                )
                row = cursor.fetchone()
                if row is not None:
                    stored = object_from_row(self._dialect, row)
                    return UpsertResult(UpsertOutcome.INSERTED, stored)
                # Another writer inserted the key since our SELECT.
                existing = self._select_by_key(
                    cursor, record.bucket, record.key, lock=True
                )
                if existing is None:
                    raise CatalogSchemaError(
                        f"{self.name}: {record.bucket}/{record.key} neither "
                        "inserted nor found; check the objects table's "
                        "unique constraint"
                    )
            merged = self._merged(existing, record)
            params = self._row_params(merged, existing.created_at, now)
            kept = self._keep_announced(
                cursor,
                existing.object_id,
                self._dialect.time_out(params["retention_until"]),
            )
            params["retention_until"] = self._dialect.time_in(kept)
            outcome = (
                UpsertOutcome.UPDATED
                if existing.sha256_hex == record.sha256_hex
                else UpsertOutcome.REPLACED
            )
            if outcome is UpsertOutcome.UPDATED and self._unchanged(existing, params):
                return UpsertResult(UpsertOutcome.UNCHANGED, existing)
            assignments = ", ".join(
                f"{column} = {self._p(column)}" for column in _UPDATE_COLUMNS
            )
            params["object_id"] = existing.object_id
            cursor.execute(
                f"UPDATE objects SET {assignments} "
                f"WHERE object_id = {self._p('object_id')} "
                f"RETURNING {', '.join(OBJECT_COLUMNS)}",
                params,
            )
            stored = object_from_row(self._dialect, cursor.fetchone())
        return UpsertResult(outcome, stored)

    def _unchanged(self, existing: CatalogObject, params: dict[str, Any]) -> bool:
        """Return whether writing ``params`` would change no stored value."""
        row = [existing.object_id, *(params[c] for c in _INSERT_COLUMNS)]
        candidate = object_from_row(self._dialect, row)
        return (
            dataclasses.replace(candidate, updated_at=existing.updated_at) == existing
        )

    def get_object(
        self, object_id: int, within: ObjectFilter | None = None
    ) -> CatalogObject | None:
        """Return an object by id if it also matches ``within``."""
        params: dict[str, Any] = {"object_id": int(object_id)}
        conditions = object_where(
            self._dialect, (within or ObjectFilter()).validated(), params
        )
        conditions.append(f"object_id = {self._p('object_id')}")
        with self._transaction(write=False) as cursor:
            cursor.execute(
                f"{_SELECT_OBJECTS} WHERE {' AND '.join(conditions)}", params
            )
            row = cursor.fetchone()
        return None if row is None else object_from_row(self._dialect, row)

    def get_object_by_key(self, bucket: str, key: str) -> CatalogObject | None:
        """Return the object stored at ``bucket``/``key``, if catalogued."""
        with self._transaction(write=False) as cursor:
            return self._select_by_key(cursor, bucket, key, lock=False)

    def list_objects(
        self, query: ObjectFilter, *, limit: int, cursor: str | None = None
    ) -> Page[CatalogObject]:
        """Return one page of matching objects, newest ``sort_time`` first."""
        query = query.validated()
        limit = _clamp(limit)
        fingerprint = query.fingerprint()
        params: dict[str, Any] = {"limit": limit + 1}
        conditions = object_where(self._dialect, query, params)
        if cursor is not None:
            after_micros, after_id = decode_cursor(cursor, fingerprint, (int, int))
            params["after_time"] = self._dialect.time_in(
                micros_to_time(int(after_micros))
            )
            params["after_id"] = after_id
            conditions.append(
                f"(sort_time, object_id) < ({self._p('after_time')}, "
                f"{self._p('after_id')})"
            )
        where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
        sql = (
            f"{_SELECT_OBJECTS}{where} ORDER BY sort_time DESC, object_id DESC "
            f"LIMIT {self._p('limit')}"
        )
        with self._transaction(write=False) as db:
            db.execute(sql, params)
            rows = db.fetchall()
        items = [object_from_row(self._dialect, row) for row in rows[:limit]]
        next_cursor = None
        if len(rows) > limit:
            last = items[-1]
            next_cursor = encode_cursor(
                fingerprint, (time_to_micros(last.sort_time), last.object_id)
            )
        return Page(items, next_cursor)

    def get_log_analytics(
        self, log_id: str, within: ObjectFilter | None = None
    ) -> CatalogObject | None:
        """Return the analytics object of a log within a scope, if any."""
        check_identifier("log_id", log_id)
        query = dataclasses.replace(
            within or ObjectFilter(), kind=ObjectKind.ANALYTICS, log_id=log_id
        )
        page = self.list_objects(query, limit=1)
        return page.items[0] if page.items else None

    # -- riders ---------------------------------------------------------------

    def upsert_rider(self, rider: Rider) -> Rider:
        """Create or update a rider, and carry the change to their objects."""
        rider = rider.validated()
        now = self._now()
        names = (*RIDER_COLUMNS, "created_at", "updated_at")
        updates = ", ".join(
            f"{column} = excluded.{column}"
            for column in (*RIDER_COLUMNS[1:], "updated_at")
        )
        with self._transaction(write=True) as cursor:
            cursor.execute(
                f"INSERT INTO riders ({', '.join(names)}) VALUES "
                f"({', '.join(self._p(column) for column in names)}) "
                f"ON CONFLICT (rider_id) DO UPDATE SET {updates}",
                {
                    "rider_id": rider.rider_id,
                    "user_type": str(rider.user_type),
                    "product": rider.product,
                    "technician_id": rider.technician_id,
                    "created_at": self._dialect.time_in(now),
                    "updated_at": self._dialect.time_in(now),
                },
            )
            changed = self._apply_rider_to_objects(cursor, rider, now)
        if changed:
            _LOGGER.info(
                "%s: rider %s is %s; user type and retention of %d objects updated",
                self.name,
                rider.rider_id,
                rider.user_type.value,
                changed,
            )
        return rider

    def _apply_rider_to_objects(
        self, cursor: DbCursor, rider: Rider, now: dt.datetime
    ) -> int:
        """Give a rider's objects their user type, product and retention date."""
        cursor.execute(
            f"{_SELECT_OBJECTS} WHERE rider_id = {self._p('rider_id')}"
            + self._dialect.for_update,
            {"rider_id": rider.rider_id},
        )
        rows = [object_from_row(self._dialect, row) for row in cursor.fetchall()]
        changed = 0
        for existing in rows:
            record = dataclasses.replace(
                existing.as_record(),
                user_type=rider.user_type,
                product=rider.product or existing.product,
            )
            retention = self._keep_announced(
                cursor,
                existing.object_id,
                self._retention.retention_until(record, existing.created_at),
            )
            if (
                record.user_type is existing.user_type
                and record.product == existing.product
                and retention == existing.retention_until
            ):
                continue
            cursor.execute(
                f"UPDATE objects SET user_type = {self._p('user_type')}, "
                f"product = {self._p('product')}, "
                f"retention_until = {self._p('retention_until')}, "
                f"updated_at = {self._p('updated_at')} "
                f"WHERE object_id = {self._p('object_id')}",
                {
                    "user_type": str(rider.user_type),
                    "product": record.product,
                    "retention_until": self._dialect.time_in(retention),
                    "updated_at": self._dialect.time_in(now),
                    "object_id": existing.object_id,
                },
            )
            changed += 1
        return changed

    def get_rider(self, rider_id: str) -> Rider | None:
        """Return a rider, or None if unknown."""
        check_identifier("rider_id", rider_id)
        with self._transaction(write=False) as cursor:
            cursor.execute(
                f"SELECT {', '.join(RIDER_COLUMNS)} FROM riders "
                f"WHERE rider_id = {self._p('rider_id')}",
                {"rider_id": rider_id},
            )
            row = cursor.fetchone()
        return None if row is None else rider_from_row(row)

    def list_riders(
        self,
        *,
        technician_id: str | None = None,
        limit: int,
        cursor: str | None = None,
    ) -> Page[Rider]:
        """Return riders ordered by id, optionally one technician's only."""
        limit = _clamp(limit)
        fingerprint = f"riders:{technician_id!r}"
        params: dict[str, Any] = {"limit": limit + 1}
        conditions = []
        if technician_id is not None:
            check_identifier("technician_id", technician_id)
            params["technician_id"] = technician_id
            conditions.append(
                f"technician_id = {self._p('technician_id')} "
                "AND user_type = 'professional'"
            )
        if cursor is not None:
            (after,) = decode_cursor(cursor, fingerprint, (str,))
            params["after"] = after
            conditions.append(f"rider_id > {self._p('after')}")
        where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
        with self._transaction(write=False) as db:
            db.execute(
                f"SELECT {', '.join(RIDER_COLUMNS)} FROM riders{where} "
                f"ORDER BY rider_id LIMIT {self._p('limit')}",
                params,
            )
            rows = db.fetchall()
        riders = [rider_from_row(row) for row in rows[:limit]]
        next_cursor = None
        if len(rows) > limit:
            next_cursor = encode_cursor(fingerprint, (riders[-1].rider_id,))
        return Page(riders, next_cursor)


def iter_pages(
    list_page: Callable[[str | None], Page[Any]], max_pages: int
) -> Iterator[Any]:
    """Yield every item of a paginated listing, at most ``max_pages`` pages."""
    cursor: str | None = None
    for _ in range(max_pages):
        page = list_page(cursor)
        yield from page.items
        if page.next_cursor is None:
            return
        cursor = page.next_cursor
