"""The SQLite catalog: the embedded default, one file, no server.

One connection per thread (the API serves requests from a thread pool), in
WAL mode so readers never wait for the writer. A write transaction starts
with ``BEGIN IMMEDIATE``, which takes the database's write lock up front:
concurrent upserts and migrations queue on the busy timeout instead of
failing half-way. ``synchronous=NORMAL`` may lose the last transactions on
power loss, never corrupt the file; the catalog can be rebuilt from the
object store by reconciliation, so that is the right trade for speed.

``sqlite3`` errors are mapped here: a locked or unreadable database is
:class:`~.errors.CatalogUnavailable`, anything else :class:`~.errors.CatalogError`.
"""

from __future__ import annotations

import datetime as dt
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from .errors import CatalogError, CatalogUnavailable
from .migrations import Migration
from .retention import RetentionPolicy
from .schema import SQLITE_MIGRATIONS, SQLITE_MIGRATIONS_TABLE
from .sql import Dialect
from .sqlbase import DbCursor, SqlCatalog, utc_now

__all__ = ["SQLITE_DIALECT", "SqliteCatalog"]

_LOGGER = logging.getLogger(__name__)

# How long a writer waits for another one's lock before giving up; upserts
# take milliseconds, so a longer wait means something is stuck.
BUSY_TIMEOUT_S = 10.0
# Pause between attempts to switch a new database to WAL (see _enable_wal).
_WAL_RETRY_S = 0.01

SQLITE_DIALECT = Dialect(
    name="sqlite", placeholder=":{name}", times_as_micros=True, for_update=""
)


class SqliteCatalog(SqlCatalog):
    """The catalog in one SQLite file; see the module docstring."""

    def __init__(
        self,
        path: Path | str,
        *,
        retention: RetentionPolicy | None = None,
        clock: Callable[[], dt.datetime] = utc_now,
        migrations: Sequence[Migration] = SQLITE_MIGRATIONS,
        busy_timeout_s: float = BUSY_TIMEOUT_S,
    ) -> None:
        """Open (and create) the catalog file at ``path``.

        Raises:
            ValueError: ``path`` is ``:memory:`` (every thread would get its
                own empty database).
        """
        super().__init__(SQLITE_DIALECT, migrations, retention=retention, clock=clock)
        if str(path) == ":memory:":
            raise ValueError("sqlite catalog: ':memory:' is per connection; use a file")
        self._path = Path(path)
        self._path.parent.mkdir(parents=True, exist_ok=True)
        self._busy_timeout_s = busy_timeout_s
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._closed = False

    @property
    def name(self) -> str:
        """Return a short description for log lines."""
        return f"sqlite:{self._path}"

    @property
    def path(self) -> Path:
        """Return the database file."""
        return self._path

    def _connection(self) -> sqlite3.Connection:
        if self._closed:
            raise CatalogUnavailable(f"{self.name}: catalog is closed")
        connection: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if connection is not None:
            return connection
        with self._lock:
            if self._closed:
                raise CatalogUnavailable(f"{self.name}: catalog is closed")
            try:
                connection = sqlite3.connect(
                    self._path,
                    timeout=self._busy_timeout_s,
                    isolation_level=None,
                    check_same_thread=False,
                )
                _enable_wal(connection, self._busy_timeout_s)
                connection.execute("PRAGMA synchronous=NORMAL")
                connection.execute("PRAGMA foreign_keys=ON")
            except sqlite3.Error as exc:
                raise CatalogUnavailable(
                    f"{self.name}: cannot open the catalog: {exc}; check the "
                    "path and its permissions"
                ) from exc
            self._connections.append(connection)
        self._local.conn = connection
        return connection

    @contextmanager
    def _transaction(self, *, write: bool) -> Iterator[DbCursor]:
        connection = self._connection()
        try:
            cursor = connection.cursor()
            cursor.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            try:
                yield cursor
                cursor.execute("COMMIT")
            except BaseException:
                if connection.in_transaction:
                    connection.rollback()
                raise
        except sqlite3.OperationalError as exc:
            raise CatalogUnavailable(f"{self.name}: {exc}; retry later") from exc
        except sqlite3.Error as exc:
            raise CatalogError(f"{self.name}: {exc}") from exc

    def _begin_migration(self, cursor: DbCursor) -> None:
        # BEGIN IMMEDIATE already holds the write lock.
        return None

    def _migrations_table_ddl(self) -> str:
        return SQLITE_MIGRATIONS_TABLE

    def _table_exists(self, cursor: DbCursor, table: str) -> bool:
        cursor.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = :name",
            {"name": table},
        )
        return cursor.fetchone() is not None

    def _is_driver_error(self, exc: BaseException) -> bool:
        return isinstance(exc, sqlite3.Error)

    def journal_mode(self) -> str:
        """Return the journal mode in force (``wal`` where the file system allows)."""
        with self._transaction(write=False) as cursor:
            cursor.execute("PRAGMA journal_mode")
            row = cursor.fetchone()
        return str(row[0])

    def close(self) -> None:
        """Close every thread's connection; later calls fail as unavailable."""
        with self._lock:
            self._closed = True
            connections, self._connections = self._connections, []
        for connection in connections:
            connection.close()
        _LOGGER.debug("%s: closed %d connections", self.name, len(connections))


def _enable_wal(connection: sqlite3.Connection, timeout_s: float) -> None:
    """Switch to WAL, retrying while another connection holds the file.

    Changing the journal mode needs an exclusive lock and SQLite does not
    run the busy handler for it, so connections opening a new catalog at the
    same moment get "database is locked" at once; retry within the timeout.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            connection.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() >= deadline:
                raise
            time.sleep(_WAL_RETRY_S)
