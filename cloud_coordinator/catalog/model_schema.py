"""DDL of schema migration 6: published model versions and their roll-outs.

``schema.py`` lists the migration; the statements live here beside the code
that uses them (:mod:`.model_registry`). A release's gate figures are a JSON
document in text; a roll-out's canary gateways a JSON list.
"""

from __future__ import annotations

__all__ = [
    "MODELS_MIGRATION_NAME",
    "MODELS_MIGRATION_VERSION",
    "POSTGRES_MODELS",
    "SQLITE_MODELS",
]

MODELS_MIGRATION_VERSION = 6
MODELS_MIGRATION_NAME = "model releases and roll-outs"

SQLITE_MODELS: tuple[str, ...] = (
    """
    CREATE TABLE model_releases (
        model_name TEXT NOT NULL,
        version TEXT NOT NULL,
        sha256 TEXT NOT NULL CHECK (length(sha256) = 64),
        size_bytes INTEGER NOT NULL CHECK (size_bytes >= 0),
        targets_version INTEGER NOT NULL,
        source TEXT NOT NULL,
        run_id TEXT,
        gate_passed INTEGER NOT NULL CHECK (gate_passed IN (0, 1)),
        approved INTEGER NOT NULL CHECK (approved IN (0, 1)),
        figures TEXT NOT NULL,
        published_at INTEGER NOT NULL,
        PRIMARY KEY (model_name, version)
    )""",
    """
    CREATE TABLE model_rollouts (
        model_name TEXT NOT NULL,
        sequence INTEGER NOT NULL CHECK (sequence >= 1),
        version TEXT NOT NULL,
        stable_version TEXT,
        stage TEXT NOT NULL CHECK (stage IN ('canary', 'complete', 'halted')),
        canary_gateways TEXT NOT NULL,
        canary_share REAL NOT NULL,
        note TEXT NOT NULL,
        updated_at INTEGER NOT NULL,
        PRIMARY KEY (model_name, sequence)
    )""",
)

POSTGRES_MODELS: tuple[str, ...] = (
    """
    CREATE TABLE model_releases (
        model_name text NOT NULL,
        version text NOT NULL,
        sha256 text NOT NULL CHECK (length(sha256) = 64),
        size_bytes bigint NOT NULL CHECK (size_bytes >= 0),
        targets_version integer NOT NULL,
        source text NOT NULL,
        run_id text,
        gate_passed boolean NOT NULL,
        approved boolean NOT NULL,
        figures text NOT NULL,
        published_at timestamptz NOT NULL,
        PRIMARY KEY (model_name, version)
    )""",
    """
    CREATE TABLE model_rollouts (
        model_name text NOT NULL,
        sequence integer NOT NULL CHECK (sequence >= 1),
        version text NOT NULL,
        stable_version text,
        stage text NOT NULL CHECK (stage IN ('canary', 'complete', 'halted')),
        canary_gateways text NOT NULL,
        canary_share double precision NOT NULL,
        note text NOT NULL,
        updated_at timestamptz NOT NULL,
        PRIMARY KEY (model_name, sequence)
    )""",
)
