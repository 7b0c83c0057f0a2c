"""The catalog: every raw, analytics and crash object indexed with its metadata.

One interface (:class:`Catalog`), two backends on the same SQL: SQLite
(:class:`SqliteCatalog`, embedded default, WAL) and PostgreSQL
(:class:`PostgresCatalog`, production, psycopg 3), each with versioned
schema migrations recorded in ``schema_migrations``. Listings use opaque
keyset cursors and a hard page limit. :mod:`.errors` draws the exception
tree; :func:`record_from_object` turns a stored object's metadata into a
record to index.
"""

from .device_registry import Device
from .errors import (
    CatalogError,
    CatalogSchemaError,
    CatalogUnavailable,
    InvalidCursor,
    InvalidRecord,
)
from .factory import open_catalog
from .interface import MAX_PAGE_LIMIT, Catalog
from .lifecycle import (
    AuditAction,
    AuditEntry,
    CrashVerdictRecord,
    JobRecord,
    JobState,
    Verdict,
)
from .migrations import Migration
from .model_registry import ModelRelease, ModelRollout
from .models import (
    CatalogObject,
    ObjectFilter,
    ObjectKind,
    ObjectRecord,
    Page,
    Rider,
    UpsertOutcome,
    UpsertResult,
    UserType,
    check_identifier,
)
from .postgres import PostgresCatalog
from .records import kind_for_bucket, record_from_object
from .retention import DEFAULT_RAW_RETENTION_DAYS, RetentionPolicy
from .schema import POSTGRES_MIGRATIONS, SQLITE_MIGRATIONS
from .sqlbase import iter_pages
from .sqlite import SqliteCatalog

__all__ = [
    "DEFAULT_RAW_RETENTION_DAYS",
    "MAX_PAGE_LIMIT",
    "POSTGRES_MIGRATIONS",
    "SQLITE_MIGRATIONS",
    "AuditAction",
    "AuditEntry",
    "Catalog",
    "CatalogError",
    "CatalogObject",
    "CatalogSchemaError",
    "CatalogUnavailable",
    "CrashVerdictRecord",
    "Device",
    "InvalidCursor",
    "InvalidRecord",
    "JobRecord",
    "JobState",
    "Migration",
    "ModelRelease",
    "ModelRollout",
    "ObjectFilter",
    "ObjectKind",
    "ObjectRecord",
    "Page",
    "PostgresCatalog",
    "RetentionPolicy",
    "Rider",
    "SqliteCatalog",
    "UpsertOutcome",
    "UpsertResult",
    "UserType",
    "Verdict",
    "check_identifier",
    "iter_pages",
    "kind_for_bucket",
    "open_catalog",
    "record_from_object",
]
