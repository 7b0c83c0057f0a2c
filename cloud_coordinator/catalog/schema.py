"""The schema migrations of each backend (append-only; see migrations.py).

Both schemas hold the same tables and indexes. SQLite stores times as
integer microseconds since the epoch and booleans as 0/1; PostgreSQL uses
``timestamptz``, ``boolean`` and identity columns. Listings read newest
first, so the listing indexes end in ``sort_time DESC, object_id DESC``.
"""

from __future__ import annotations

from .device_schema import DEVICE_MIGRATION_NAME, POSTGRES_DEVICES, SQLITE_DEVICES
from .fl_schema import FL_MIGRATION_NAME, POSTGRES_FL, SQLITE_FL
from .lifecycle_schema import (
    LIFECYCLE_MIGRATION_NAME,
    POSTGRES_LIFECYCLE,
    SQLITE_LIFECYCLE,
)
from .migrations import Migration
from .model_schema import (
    MODELS_MIGRATION_NAME,
    MODELS_MIGRATION_VERSION,
    POSTGRES_MODELS,
    SQLITE_MODELS,
)

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

# Migration 2: notifications are read per rider after a sequence number (the
# WebSocket's resume point) and, for crash events, until published on MQTT.
_NOTIFICATION_INDEXES = (
    "CREATE INDEX notifications_rider ON notifications (rider_id, seq)",
    "CREATE INDEX notifications_unpublished ON notifications (seq) "
    "WHERE published_at IS NULL",
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
    Migration(
        2,
        "gateway per object, notification outbox, ingest log and quarantine",
        (
            "ALTER TABLE objects ADD COLUMN gateway_id TEXT",
            """
            CREATE TABLE notifications (
                seq INTEGER PRIMARY KEY AUTOINCREMENT,
                notification_id TEXT NOT NULL UNIQUE,
                type TEXT NOT NULL CHECK (type IN ('analytics_ready',
                    'crash_detected', 'raw_deletion_scheduled')),
                rider_id TEXT,
                role TEXT,
                payload TEXT NOT NULL,
                created_at INTEGER NOT NULL,
                published_at INTEGER,
                CHECK (rider_id IS NOT NULL OR role IS NOT NULL)
            )""",
            *_NOTIFICATION_INDEXES,
            """
            CREATE TABLE ingest_events (
                event_id TEXT PRIMARY KEY,
                type TEXT NOT NULL,
                gateway_id TEXT NOT NULL,
                rider_id TEXT NOT NULL,
                log_id TEXT NOT NULL,
                objects INTEGER NOT NULL,
                processed_at INTEGER NOT NULL
            )""",
            """
            CREATE TABLE ingest_quarantine (
                quarantine_id INTEGER PRIMARY KEY AUTOINCREMENT,
                fingerprint TEXT NOT NULL UNIQUE,
                source TEXT NOT NULL,
                event_id TEXT,
                reason TEXT NOT NULL,
                payload BLOB NOT NULL,
                first_seen INTEGER NOT NULL,
                last_seen INTEGER NOT NULL,
                times_seen INTEGER NOT NULL
            )""",
        ),
    ),
    Migration(3, LIFECYCLE_MIGRATION_NAME, SQLITE_LIFECYCLE),
    Migration(4, DEVICE_MIGRATION_NAME, SQLITE_DEVICES),
    Migration(5, FL_MIGRATION_NAME, SQLITE_FL),
    Migration(MODELS_MIGRATION_VERSION, MODELS_MIGRATION_NAME, SQLITE_MODELS),
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
    Migration(
        2,
        "gateway per object, notification outbox, ingest log and quarantine",
        (
            "ALTER TABLE objects ADD COLUMN gateway_id text",
            """
            CREATE TABLE notifications (
                seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                notification_id text NOT NULL UNIQUE,
                type text NOT NULL CHECK (type IN ('analytics_ready',
                    'crash_detected', 'raw_deletion_scheduled')),
                rider_id text,
                role text,
                payload text NOT NULL,
                created_at timestamptz NOT NULL,
                published_at timestamptz,
                CHECK (rider_id IS NOT NULL OR role IS NOT NULL)
            )""",
            *_NOTIFICATION_INDEXES,
            """
            CREATE TABLE ingest_events (
                event_id text PRIMARY KEY,
                type text NOT NULL,
                gateway_id text NOT NULL,
                rider_id text NOT NULL,
                log_id text NOT NULL,
                objects integer NOT NULL,
                processed_at timestamptz NOT NULL
            )""",
            """
            CREATE TABLE ingest_quarantine (
                quarantine_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                fingerprint text NOT NULL UNIQUE,
                source text NOT NULL,
                event_id text,
                reason text NOT NULL,
                payload bytea NOT NULL,
                first_seen timestamptz NOT NULL,
                last_seen timestamptz NOT NULL,
                times_seen integer NOT NULL
            )""",
        ),
    ),
    Migration(3, LIFECYCLE_MIGRATION_NAME, POSTGRES_LIFECYCLE),
    Migration(4, DEVICE_MIGRATION_NAME, POSTGRES_DEVICES),
    Migration(5, FL_MIGRATION_NAME, POSTGRES_FL),
    Migration(MODELS_MIGRATION_VERSION, MODELS_MIGRATION_NAME, POSTGRES_MODELS),
)
