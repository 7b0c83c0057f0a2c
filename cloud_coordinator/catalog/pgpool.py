"""A small, bounded pool of psycopg connections shared by the API's threads.

At most ``max_size`` connections exist; a caller that finds none idle and
the pool full waits up to ``acquire_timeout_s`` and then gets
:class:`~.errors.CatalogUnavailable` (better than queueing requests
forever behind a stuck database). Connections are reused last-in first-out
so idle ones at the bottom can be closed by the server's idle timeout
without harm. A connection comes back rolled back if its user left a
transaction open, and is dropped if it broke (server restart, network);
the next caller connects afresh, so a database restart heals by itself.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg import pq

from .errors import CatalogUnavailable

__all__ = ["ConnectionPool"]

_LOGGER = logging.getLogger(__name__)


class ConnectionPool:
    """Bounded LIFO pool of autocommit psycopg connections."""

    def __init__(
        self,
        conninfo: str,
        *,
        max_size: int,
        acquire_timeout_s: float,
        connect_timeout_s: float,
        options: str = "",
        description: str = "postgresql",
    ) -> None:
        """Prepare a pool; connections are opened on first use.

        ``options`` is passed to the server at connect time (``-c name=value``
        settings such as ``statement_timeout``).
        """
        if max_size < 1:
            raise ValueError(f"connection pool: max_size {max_size} < 1")
        self._conninfo = conninfo
        self._max_size = max_size
        self._acquire_timeout_s = acquire_timeout_s
        self._connect_timeout_s = connect_timeout_s
        self._options = options
        self._description = description
        self._slots = threading.BoundedSemaphore(max_size)
        self._idle: list[psycopg.Connection[tuple[object, ...]]] = []
        self._lock = threading.Lock()
        self._closed = False

    def _connect(self) -> psycopg.Connection[tuple[object, ...]]:
        try:
            return psycopg.connect(
                self._conninfo,
                autocommit=True,
                connect_timeout=max(1, round(self._connect_timeout_s)),
                options=self._options,
            )
        except psycopg.Error as exc:
            raise CatalogUnavailable(
                f"{self._description}: cannot connect within "
                f"{self._connect_timeout_s:.0f} s: {exc}; check the server "
                "and the catalog URL"
            ) from exc

    @contextmanager
    def connection(self) -> Iterator[psycopg.Connection[tuple[object, ...]]]:
        """Lend a connection for the duration of the block.

        Raises:
            CatalogUnavailable: no connection free within the acquire
                timeout, the pool is closed, or connecting failed.
        """
        if self._closed:
            raise CatalogUnavailable(f"{self._description}: catalog is closed")
        if not self._slots.acquire(timeout=self._acquire_timeout_s):
            raise CatalogUnavailable(
                f"{self._description}: all {self._max_size} connections busy for "
                f"{self._acquire_timeout_s:.1f} s; the database is slow or the "
                "pool too small"
            )
        connection = None
        try:
            with self._lock:
                connection = self._idle.pop() if self._idle else None
            if connection is None or connection.closed:
                connection = self._connect()
            yield connection
        finally:
            if connection is not None:
                self._give_back(connection)
            self._slots.release()

    def _give_back(self, connection: psycopg.Connection[tuple[object, ...]]) -> None:
        keep = not connection.closed and not connection.broken
        if keep and connection.info.transaction_status != pq.TransactionStatus.IDLE:
            try:
                connection.rollback()
            except psycopg.Error:
                keep = False
        with self._lock:
            if keep and not self._closed:
                self._idle.append(connection)
                return
        connection.close()

    def close(self) -> None:
        """Close idle connections; lent ones close when they come back."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for connection in idle:
            connection.close()
        _LOGGER.debug("%s: pool closed (%d idle)", self._description, len(idle))
