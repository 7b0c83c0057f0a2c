"""The catalog interface every backend implements.

Callers depend on this Protocol only: the results API reads through it,
ingest and reconciliation write through :meth:`Catalog.upsert_object`. Two
backends implement it on the same SQL (:mod:`.sqlbase`): SQLite, the
embedded default, and PostgreSQL for production.
"""

from __future__ import annotations

from typing import Protocol

from .models import (
    CatalogObject,
    ObjectFilter,
    ObjectRecord,
    Page,
    Rider,
    UpsertResult,
)

__all__ = ["MAX_PAGE_LIMIT", "Catalog"]

# Hard upper bound on one page, whatever a caller asks: a page of 1000
# objects is about 600 kB of JSON, the most a client should get in one go.
MAX_PAGE_LIMIT = 1000


class Catalog(Protocol):
    """Index of stored objects and riders; see the module docstring."""

    @property
    def name(self) -> str:
        """Return a short description for log lines (backend and location)."""
        ...

    def migrate(self) -> list[int]:
        """Apply pending schema migrations; return the versions applied.

        Safe to call at every start and from several processes at once: the
        migrations run in one transaction under a lock.

        Raises:
            CatalogSchemaError: a migration failed (nothing of it is kept),
                or the database has a version this software does not know.
            CatalogUnavailable: the database cannot be reached.
        """
        ...

    def schema_version(self) -> int:
        """Return the highest applied migration version (0: none)."""
        ...

    def ping(self) -> None:
        """Check the database answers a query.

        Raises:
            CatalogUnavailable: it does not.
        """
        ...

    def upsert_object(self, record: ObjectRecord) -> UpsertResult:
        """Index ``record`` idempotently by bucket and key.

        The same bucket, key, SHA-256 and metadata again changes nothing
        (``unchanged``). The same SHA-256 with metadata learnt since (a crash
        verdict, the user type) updates the row (``updated``); a field left
        None keeps its stored value. A new SHA-256 for a known key means the
        object was overwritten (``replaced``). The row keeps its id and first
        catalogued time, and its retention date is recomputed from that time.

        Raises:
            InvalidRecord: a malformed field.
            CatalogUnavailable: the database cannot be reached.
        """
        ...

    def get_object(
        self, object_id: int, within: ObjectFilter | None = None
    ) -> CatalogObject | None:
        """Return an object by id if it also matches ``within`` (a scope)."""
        ...

    def get_object_by_key(self, bucket: str, key: str) -> CatalogObject | None:
        """Return the object stored at ``bucket``/``key``, if catalogued."""
        ...

    def list_objects(
        self, query: ObjectFilter, *, limit: int, cursor: str | None = None
    ) -> Page[CatalogObject]:
        """Return one page of matching objects, newest ``sort_time`` first.

        ``limit`` is clamped to 1..``MAX_PAGE_LIMIT``. Pass the returned
        ``next_cursor`` with the same ``query`` to get the next page.

        Raises:
            InvalidCursor: the cursor is malformed or from another query.
            InvalidRecord: a malformed filter value.
        """
        ...

    def get_log_analytics(
        self, log_id: str, within: ObjectFilter | None = None
    ) -> CatalogObject | None:
        """Return the analytics object of a log within a scope, if any.

        Should several suits share the log id, the newest one is returned;
        pass ``suit_id`` in ``within`` to pick one.
        """
        ...

    def upsert_rider(self, rider: Rider) -> Rider:
        """Create or update a rider (user type, product, technician).

        The rider's catalogued objects take the new user type (and product,
        when given) in the same transaction, and their retention dates are
        recomputed: a rider who becomes professional keeps raw data that
        was due to expire, one who becomes private gets the usual window
        counted from each object's first catalogued time.

        Raises:
            InvalidRecord: a malformed field.
        """
        ...

    def get_rider(self, rider_id: str) -> Rider | None:
        """Return a rider, or None if unknown."""
        ...

    def list_riders(
        self,
        *,
        technician_id: str | None = None,
        limit: int,
        cursor: str | None = None,
    ) -> Page[Rider]:
        """Return riders ordered by id.

        With ``technician_id``, only the professional riders assigned to
        that technician.

        Raises:
            InvalidCursor: the cursor is malformed or from another query.
        """
        ...

    def close(self) -> None:
        """Release every connection."""
        ...
