"""Exceptions raised by catalog backends.

Hierarchy::

    CatalogError
     ├── CatalogUnavailable     database unreachable, timed out, pool empty
     ├── CatalogSchemaError     migrations failed, or the database is newer
     │                          than this software
     ├── InvalidRecord          a record to index is malformed (also ValueError)
     └── InvalidCursor          a page cursor is malformed or belongs to
                                another query (also ValueError)

Driver errors (``sqlite3``, ``psycopg``) are mapped into this tree in one
place per backend, always with ``raise ... from``.
"""

from __future__ import annotations

__all__ = [
    "CatalogError",
    "CatalogSchemaError",
    "CatalogUnavailable",
    "InvalidCursor",
    "InvalidRecord",
]


class CatalogError(Exception):
    """Base class of every catalog error."""


class CatalogUnavailable(CatalogError):
    """The catalog database cannot be reached or is failing; retry later."""


class CatalogSchemaError(CatalogError):
    """The database schema cannot be brought to the version this code needs."""


class InvalidRecord(CatalogError, ValueError):
    """A record given to the catalog is malformed."""


class InvalidCursor(CatalogError, ValueError):
    """A page cursor is malformed or was issued for a different query."""
