"""DDL of schema migration 4: the registry of online devices.

``schema.py`` lists the migration; :mod:`.device_registry` uses the table.
A device streams live samples on ``devices/{device_id}/data``; its row says
whose data they are (rider) and which suit id its objects carry.
"""

from __future__ import annotations

__all__ = ["DEVICE_MIGRATION_NAME", "POSTGRES_DEVICES", "SQLITE_DEVICES"]

DEVICE_MIGRATION_NAME = "registry of online devices"

SQLITE_DEVICES: tuple[str, ...] = (
    """
    CREATE TABLE devices (
        device_id TEXT PRIMARY KEY,
        rider_id TEXT NOT NULL,
        suit_id TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
    )""",
    "CREATE INDEX devices_rider ON devices (rider_id)",
)

POSTGRES_DEVICES: tuple[str, ...] = (
    """
    CREATE TABLE devices (
        device_id text PRIMARY KEY,
        rider_id text NOT NULL,
        suit_id text NOT NULL,
        created_at timestamptz NOT NULL,
        updated_at timestamptz NOT NULL
    )""",
    "CREATE INDEX devices_rider ON devices (rider_id)",
)
