"""DDL of schema migration 5: federated runs, their rounds, training consent.

``schema.py`` lists the migration; the statements live here beside the
code that uses them (:mod:`.fl_sql`). Flower run ids are unsigned 64-bit
numbers, beyond PostgreSQL's ``bigint``, so they are stored as text. JSON
documents (a run's settings and result, a round's metrics) are text too.
"""

from __future__ import annotations

__all__ = ["FL_MIGRATION_NAME", "FL_MIGRATION_VERSION", "POSTGRES_FL", "SQLITE_FL"]

FL_MIGRATION_VERSION = 5
FL_MIGRATION_NAME = "federated runs, rounds and training consent"

SQLITE_FL: tuple[str, ...] = (
    """
    CREATE TABLE fl_runs (
        run_key TEXT PRIMARY KEY,
        flower_run_id TEXT,
        state TEXT NOT NULL
            CHECK (state IN ('starting', 'running', 'finished', 'failed')),
        requested_by TEXT NOT NULL,
        strategy TEXT NOT NULL,
        rounds INTEGER NOT NULL,
        min_nodes INTEGER NOT NULL,
        settings TEXT NOT NULL,
        detail TEXT,
        result TEXT,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
    )""",
    "CREATE INDEX fl_runs_created ON fl_runs (created_at DESC)",
    """
    CREATE TABLE fl_rounds (
        run_key TEXT NOT NULL REFERENCES fl_runs (run_key) ON DELETE CASCADE,
        round INTEGER NOT NULL,
        status TEXT NOT NULL,
        sampled INTEGER NOT NULL,
        participants INTEGER NOT NULL,
        declined INTEGER NOT NULL,
        duration_s REAL NOT NULL,
        train_loss REAL,
        eval_loss REAL,
        eval_recall REAL,
        eval_false_positive_rate REAL,
        detail TEXT,
        metrics TEXT NOT NULL,
        recorded_at INTEGER NOT NULL,
        PRIMARY KEY (run_key, round)
    )""",
    """
    CREATE TABLE training_consent (
        rider_id TEXT PRIMARY KEY,
        opted_out INTEGER NOT NULL,
        command_id TEXT NOT NULL,
        issued_at INTEGER NOT NULL,
        published_at INTEGER
    )""",
)

POSTGRES_FL: tuple[str, ...] = (
    """
    CREATE TABLE fl_runs (
        run_key text PRIMARY KEY,
        flower_run_id text,
        state text NOT NULL
            CHECK (state IN ('starting', 'running', 'finished', 'failed')),
        requested_by text NOT NULL,
        strategy text NOT NULL,
        rounds integer NOT NULL,
        min_nodes integer NOT NULL,
        settings text NOT NULL,
        detail text,
        result text,
        created_at timestamptz NOT NULL,
        updated_at timestamptz NOT NULL
    )""",
    "CREATE INDEX fl_runs_created ON fl_runs (created_at DESC)",
    """
    CREATE TABLE fl_rounds (
        run_key text NOT NULL REFERENCES fl_runs (run_key) ON DELETE CASCADE,
        round integer NOT NULL,
        status text NOT NULL,
        sampled integer NOT NULL,
        participants integer NOT NULL,
        declined integer NOT NULL,
        duration_s double precision NOT NULL,
        train_loss double precision,
        eval_loss double precision,
        eval_recall double precision,
        eval_false_positive_rate double precision,
        detail text,
        metrics text NOT NULL,
        recorded_at timestamptz NOT NULL,
        PRIMARY KEY (run_key, round)
    )""",
    """
    CREATE TABLE training_consent (
        rider_id text PRIMARY KEY,
        opted_out boolean NOT NULL,
        command_id text NOT NULL,
        issued_at timestamptz NOT NULL,
        published_at timestamptz
    )""",
)
