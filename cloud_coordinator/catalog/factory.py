"""Open the catalog a URL names: ``sqlite:PATH`` or ``postgresql://...``."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

from .interface import Catalog
from .postgres import PostgresCatalog
from .retention import RetentionPolicy
from .sqlbase import utc_now
from .sqlite import SqliteCatalog

__all__ = ["open_catalog"]


def open_catalog(
    url: str,
    *,
    schema: str | None = None,
    retention: RetentionPolicy | None = None,
    clock: Callable[[], dt.datetime] = utc_now,
) -> Catalog:
    """Return the catalog at ``url`` (nothing is connected or migrated yet).

    ``sqlite:relative/path.db`` and ``sqlite:///absolute/path.db`` name a
    SQLite file; ``postgresql://user@host:port/db`` (or ``postgres://``) a
    PostgreSQL database, with ``schema`` as its search path.

    Raises:
        ValueError: an unknown scheme, or a schema given for SQLite.
    """
    if url.startswith("sqlite:"):
        if schema:
            raise ValueError(f"catalog {url}: a schema applies to PostgreSQL only")
        rest = url.removeprefix("sqlite:")
        path = rest[2:] if rest.startswith("///") else rest
        if not path:
            raise ValueError(f"catalog {url}: no file path after 'sqlite:'")
        return SqliteCatalog(Path(path), retention=retention, clock=clock)
    if url.startswith(("postgresql://", "postgres://")):
        return PostgresCatalog(url, schema=schema, retention=retention, clock=clock)
    raise ValueError(
        f"catalog URL {url!r}: expected sqlite:PATH or postgresql://user@host/db"
    )
