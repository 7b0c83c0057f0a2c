"""The schema migrations of each backend (append-only; see migrations.py).

Both schemas hold the same tables and indexes. SQLite stores times as
integer microseconds since the epoch and booleans as 0/1; PostgreSQL uses
``timestamptz``, ``boolean`` and identity columns. Listings read newest
first, so the listing indexes end in ``sort_time DESC, object_id DESC``.
"""

from __future__ import annotations

from .migrations import Migration

__all__ = [
    "POSTGRES_MIGRATIONS",
    "POSTGRES_MIGRATIONS_TABLE",
    "SQLITE_MIGRATIONS",
    "SQLITE_MIGRATIONS_TABLE",
]

SQLITE_MIGRATIONS_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    applied_at INTEGER NOT NULL
)"""

POSTGRES_MIGRATIONS_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version integer PRIMARY KEY,
    name text NOT NULL,
    applied_at timestamptz NOT NULL
)"""

_INDEXES = (
    "CREATE INDEX objects_rider_time ON objects "
    "(rider_id, sort_time DESC, object_id DESC)",
    "CREATE INDEX objects_kind_time ON objects (kind, sort_time DESC, object_id DESC)",
    "CREATE INDEX objects_suit_time ON objects "
    "(suit_id, sort_time DESC, object_id DESC)",
    "CREATE INDEX objects_time ON objects (sort_time DESC, object_id DESC)",
    "CREATE INDEX objects_log ON objects (log_id)",
    "CREATE INDEX objects_retention ON objects (retention_until) "
    "WHERE retention_until IS NOT NULL",
    "CREATE INDEX riders_technician ON riders (technician_id) "
    "WHERE technician_id IS NOT NULL",
)

SQLITE_MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "objects and riders",
        (
            """
            CREATE TABLE riders (
                rider_id TEXT PRIMARY KEY,
                user_type TEXT NOT NULL
                    CHECK (user_type IN ('private', 'professional')),
                product TEXT,
                technician_id TEXT,
                created_at INTEGER NOT NULL,
                updated_at INTEGER NOT NULL
            )""",
            """
            CREATE TABLE objects (
                object_id INTEGER PRIMARY KEY AUTOINCREMENT,
                bucket TEXT NOT NULL,
                object_key TEXT NOT NULL,
                kind TEXT NOT NULL CHECK (kind IN ('raw', 'analytics', 'crash')),
                object_type TEXT NOT NULL,
                rider_id TEXT NOT NULL,
                suit_id TEXT NOT NULL,
                log_id TEXT NOT NULL,
                sha256 TEXT NOT NULL CHECK (length(sha256) = 64),
                size_bytes INTEGER NOT NULL CHECK (size_bytes >= 0),
                user_type TEXT CHECK (user_type IN ('private', 'professional')),
                product TEXT,
                log_start INTEGER,
                log_end INTEGER,
                sort_time INTEGER NOT NULL,
                crash INTEGER CHECK (crash IN (0, 1)),
                model_version TEXT,
                software_version TEXT,
                sample_count INTEGER,
                created_at INTEGER NOT NULL,
                updated_at INTEGER NOT NULL,
                retention_until INTEGER,
                UNIQUE (bucket, object_key)
            )""",
            *_INDEXES,
        ),
    ),
)

POSTGRES_MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "objects and riders",
        (
            """
            CREATE TABLE riders (
                rider_id text PRIMARY KEY,
                user_type text NOT NULL
                    CHECK (user_type IN ('private', 'professional')),
                product text,
                technician_id text,
                created_at timestamptz NOT NULL,
                updated_at timestamptz NOT NULL
            )""",
            """
            CREATE TABLE objects (
                object_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                bucket text NOT NULL,
                object_key text NOT NULL,
                kind text NOT NULL CHECK (kind IN ('raw', 'analytics', 'crash')),
                object_type text NOT NULL,
                rider_id text NOT NULL,
                suit_id text NOT NULL,
                log_id text NOT NULL,
                sha256 text NOT NULL CHECK (length(sha256) = 64),
                size_bytes bigint NOT NULL CHECK (size_bytes >= 0),
                user_type text CHECK (user_type IN ('private', 'professional')),
                product text,
                log_start timestamptz,
                log_end timestamptz,
                sort_time timestamptz NOT NULL,
                crash boolean,
                model_version text,
                software_version text,
                sample_count bigint,
                created_at timestamptz NOT NULL,
                updated_at timestamptz NOT NULL,
                retention_until timestamptz,
                UNIQUE (bucket, object_key)
            )""",
            *_INDEXES,
        ),
    ),
)
