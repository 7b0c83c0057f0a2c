"""The PostgreSQL catalog (psycopg 3): the production backend.

Connections come from a bounded :class:`~.pgpool.ConnectionPool`. Each is
opened with a statement timeout (a stuck query fails instead of holding a
request thread), ``TimeZone=UTC`` and, optionally, a ``search_path`` so
several catalogs can share one database in separate schemas. Reads are
single autocommit statements (no BEGIN/COMMIT round trips); writes run in a
transaction, and an upsert locks the row it replaces (``FOR UPDATE``).
Migrations serialise on a transaction-scoped advisory lock and lift the
statement timeout, since an index build on a big table takes a while.

psycopg errors are mapped here: ``OperationalError`` (connection lost,
statement timeout, server shutting down) is
:class:`~.errors.CatalogUnavailable`, anything else
:class:`~.errors.CatalogError`.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from .errors import CatalogError, CatalogUnavailable
from .migrations import Migration
from .models import ObjectRecord
from .pgpool import ConnectionPool
from .retention import RetentionPolicy
from .schema import POSTGRES_MIGRATIONS, POSTGRES_MIGRATIONS_TABLE
from .sql import OBJECT_COLUMNS, Dialect
from .sqlbase import DbCursor, SqlCatalog, utc_now

__all__ = ["POSTGRES_DIALECT", "PostgresCatalog"]

_LOGGER = logging.getLogger(__name__)

# Connections per API process: the API's thread pool has 40 threads, but
# catalog queries take about a millisecond, so a few connections keep up.
POOL_SIZE = 10
# How long a request waits for a free connection before failing (503).
ACQUIRE_TIMEOUT_S = 5.0
CONNECT_TIMEOUT_S = 5.0
# Longest a single catalog query may run; listings use indexes and take
# milliseconds, so this only stops runaway queries.
STATEMENT_TIMEOUT_S = 5.0
# Key of the advisory lock migrations take (any fixed signed 64-bit number).
MIGRATION_LOCK_KEY = 0x5B1C_A7A1_0600_0001
_SCHEMA_RE = re.compile(r"[a-z_][a-z0-9_]{0,62}")

POSTGRES_DIALECT = Dialect(
    name="postgresql",
    placeholder="%({name})s",
    times_as_micros=False,
    for_update=" FOR UPDATE",
)


def _describe(conninfo: str, schema: str | None) -> str:
    """Return ``postgresql:host:port/db`` (never the password)."""
    try:
        params = conninfo_to_dict(conninfo)
    except psycopg.Error:
        return "postgresql:(unparsable URL)"
    host = params.get("host") or "localhost"
    where = f"postgresql:{host}:{params.get('port') or 5432}/{params.get('dbname')}"
    return f"{where}?schema={schema}" if schema else where


class PostgresCatalog(SqlCatalog):
    """The catalog in a PostgreSQL database; see the module docstring."""

    def __init__(
        self,
        conninfo: str,
        *,
        schema: str | None = None,
        retention: RetentionPolicy | None = None,
        clock: Callable[[], dt.datetime] = utc_now,
        migrations: Sequence[Migration] = POSTGRES_MIGRATIONS,
        pool_size: int = POOL_SIZE,
        acquire_timeout_s: float = ACQUIRE_TIMEOUT_S,
        connect_timeout_s: float = CONNECT_TIMEOUT_S,
        statement_timeout_s: float = STATEMENT_TIMEOUT_S,
    ) -> None:
        """Prepare a catalog on ``conninfo`` (a ``postgresql://`` URL).

        ``schema`` (lowercase letters, digits, ``_``) puts the tables in that
        schema, created by :meth:`migrate` if missing. No connection is made
        before the first call.

        Raises:
            ValueError: a malformed schema name.
        """
        super().__init__(POSTGRES_DIALECT, migrations, retention=retention, clock=clock)
        if schema is not None and not _SCHEMA_RE.fullmatch(schema):
            raise ValueError(
                f"postgresql catalog: schema {schema!r} must be lowercase "
                "letters, digits and '_' (at most 63)"
            )
        self._schema = schema
        self._description = _describe(conninfo, schema)
        options = [
            f"-c statement_timeout={round(statement_timeout_s * 1000)}",
            "-c TimeZone=UTC",
        ]
        if schema:
            options.append(f"-c search_path={schema}")
        self._pool = ConnectionPool(
            conninfo,
            max_size=pool_size,
            acquire_timeout_s=acquire_timeout_s,
            connect_timeout_s=connect_timeout_s,
            options=" ".join(options),
            description=self._description,
        )

    @property
    def name(self) -> str:
        """Return a short description for log lines (no password)."""
        return self._description

    @contextmanager
    def _transaction(self, *, write: bool) -> Iterator[DbCursor]:
        try:
            with self._pool.connection() as connection:
                if write:
                    with connection.transaction(), connection.cursor() as cursor:
                        yield cursor
                else:
                    with connection.cursor() as cursor:
                        yield cursor
        except psycopg.OperationalError as exc:
            raise CatalogUnavailable(f"{self.name}: {exc}; retry later") from exc
        except psycopg.Error as exc:
            raise CatalogError(f"{self.name}: {exc}") from exc

    def _begin_migration(self, cursor: DbCursor) -> None:
        cursor.execute(
            "SELECT pg_advisory_xact_lock(%(key)s)", {"key": MIGRATION_LOCK_KEY}
        )
        cursor.execute("SET LOCAL statement_timeout = 0")
        if self._schema:
            cursor.execute(
                sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(
                    sql.Identifier(self._schema)
                )
            )

    def _migrations_table_ddl(self) -> str:
        return POSTGRES_MIGRATIONS_TABLE

    def _table_exists(self, cursor: DbCursor, table: str) -> bool:
        cursor.execute("SELECT to_regclass(%(name)s) IS NOT NULL", {"name": table})
        row = cursor.fetchone()
        return bool(row and row[0])

    def _is_driver_error(self, exc: BaseException) -> bool:
        return isinstance(exc, psycopg.Error)

    def bulk_insert_objects(self, records: Iterable[ObjectRecord]) -> int:
        """Load new objects with COPY, for initial loads; return the count.

        Much faster than upserts (one round trip per buffer, not per row),
        but all or nothing: a key already catalogued fails the whole load
        with :class:`~.errors.CatalogError`.

        Raises:
            InvalidRecord: a malformed record (nothing is loaded).
            CatalogError: a key already exists, or the load failed.
        """
        now = self._now()
        columns = OBJECT_COLUMNS[1:]
        statement = sql.SQL("COPY objects ({}) FROM STDIN").format(
            sql.SQL(", ").join(sql.Identifier(column) for column in columns)
        )
        count = 0
        with self._transaction(write=True) as cursor:
            cursor.execute("SET LOCAL statement_timeout = 0")
            with cursor.copy(statement) as copy:  # type: ignore[attr-defined]
                for record in records:
                    checked = record.validated()
                    params = self._row_params(checked, checked.created_at or now, now)
                    copy.write_row([params[column] for column in columns])
                    count += 1
        _LOGGER.info("%s: bulk-loaded %d objects", self.name, count)
        return count

    def close(self) -> None:
        """Close the connection pool."""
        self._pool.close()
