"""DDL of schema migration 3: audit log, retention notices, verdicts, jobs.

``schema.py`` lists the migration; the statements live here beside the
code that uses them (:mod:`.lifecycle_sql`). The audit log has no foreign
key to ``objects`` on purpose: it outlives the rows it describes.
"""

from __future__ import annotations

__all__ = ["LIFECYCLE_MIGRATION_NAME", "POSTGRES_LIFECYCLE", "SQLITE_LIFECYCLE"]

LIFECYCLE_MIGRATION_NAME = "audit log, retention notices, crash verdicts, jobs"

_INDEXES = (
    "CREATE INDEX audit_rider ON audit_log (rider_id, audit_id)",
    "CREATE INDEX crash_verdicts_log ON crash_verdicts "
    "(rider_id, suit_id, log_id, verdict_id)",
    "CREATE INDEX jobs_rider ON jobs (rider_id)",
    "CREATE INDEX retention_notices_rider ON retention_notices (rider_id)",
)

SQLITE_LIFECYCLE: tuple[str, ...] = (
    """
    CREATE TABLE audit_log (
        audit_id INTEGER PRIMARY KEY AUTOINCREMENT,
        audited_at INTEGER NOT NULL,
        action TEXT NOT NULL,
        actor TEXT NOT NULL,
        rider_id TEXT,
        suit_id TEXT,
        log_id TEXT,
        bucket TEXT,
        object_key TEXT,
        object_id INTEGER,
        sha256 TEXT,
        size_bytes INTEGER,
        detail TEXT
    )""",
    """
    CREATE TABLE retention_notices (
        object_id INTEGER PRIMARY KEY,
        rider_id TEXT NOT NULL,
        retention_until INTEGER NOT NULL,
        notified_at INTEGER NOT NULL
    )""",
    """
    CREATE TABLE crash_verdicts (
        verdict_id INTEGER PRIMARY KEY AUTOINCREMENT,
        rider_id TEXT NOT NULL,
        suit_id TEXT NOT NULL,
        log_id TEXT NOT NULL,
        verdict TEXT NOT NULL CHECK (verdict IN ('confirmed', 'rejected')),
        actor TEXT NOT NULL,
        command_id TEXT NOT NULL UNIQUE,
        issued_at INTEGER NOT NULL,
        t_offset_s REAL,
        gateway_id TEXT,
        published_at INTEGER,
        note TEXT
    )""",
    """
    CREATE TABLE jobs (
        job_id TEXT PRIMARY KEY,
        kind TEXT NOT NULL,
        state TEXT NOT NULL
            CHECK (state IN ('queued', 'running', 'succeeded', 'failed')),
        requested_by TEXT NOT NULL,
        rider_id TEXT NOT NULL,
        suit_id TEXT NOT NULL,
        source_bucket TEXT NOT NULL,
        source_key TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        log_id TEXT,
        result TEXT,
        error TEXT
    )""",
    *_INDEXES,
)

POSTGRES_LIFECYCLE: tuple[str, ...] = (
    """
    CREATE TABLE audit_log (
        audit_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        audited_at timestamptz NOT NULL,
        action text NOT NULL,
        actor text NOT NULL,
        rider_id text,
        suit_id text,
        log_id text,
        bucket text,
        object_key text,
        object_id bigint,
        sha256 text,
        size_bytes bigint,
        detail text
    )""",
    """
    CREATE TABLE retention_notices (
        object_id bigint PRIMARY KEY,
        rider_id text NOT NULL,
        retention_until timestamptz NOT NULL,
        notified_at timestamptz NOT NULL
    )""",
    """
    CREATE TABLE crash_verdicts (
        verdict_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        rider_id text NOT NULL,
        suit_id text NOT NULL,
        log_id text NOT NULL,
        verdict text NOT NULL CHECK (verdict IN ('confirmed', 'rejected')),
        actor text NOT NULL,
        command_id text NOT NULL UNIQUE,
        issued_at timestamptz NOT NULL,
        t_offset_s double precision,
        gateway_id text,
        published_at timestamptz,
        note text
    )""",
    """
    CREATE TABLE jobs (
        job_id text PRIMARY KEY,
        kind text NOT NULL,
        state text NOT NULL
            CHECK (state IN ('queued', 'running', 'succeeded', 'failed')),
        requested_by text NOT NULL,
        rider_id text NOT NULL,
        suit_id text NOT NULL,
        source_bucket text NOT NULL,
        source_key text NOT NULL,
        created_at timestamptz NOT NULL,
        updated_at timestamptz NOT NULL,
        log_id text,
        result text,
        error text
    )""",
    *_INDEXES,
)
