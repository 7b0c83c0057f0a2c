"""The notifications a catalogued log produces, with stable ids.

Ingest (from a gateway event) and reconciliation (from a bucket listing)
build the same notifications with the same ids, so whichever path
catalogues a log first announces it, and the other adds nothing.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence
from typing import Any

from ..catalog import CatalogObject, ObjectKind
from ..notify import Notification, NotificationType, notification_id_for

__all__ = [
    "analytics_ready",
    "crash_detected",
    "crash_events_of_analytics",
    "crash_of_analytics",
]


def _crash_section(data: bytes | None) -> dict[str, Any] | None:
    if data is None:
        return None
    try:
        document = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    crash = document.get("crash") if isinstance(document, dict) else None
    return crash if isinstance(crash, dict) else None


def crash_of_analytics(data: bytes | None) -> bool | None:
    """Return ``crash.detected`` of a ride-analytics document (None: unknown)."""
    detected = (_crash_section(data) or {}).get("detected")
    return detected if isinstance(detected, bool) else None


def crash_events_of_analytics(data: bytes | None) -> list[Any]:
    """Return ``crash.events`` of a ride-analytics document ([] if none)."""
    events = (_crash_section(data) or {}).get("events")
    return events if isinstance(events, list) else []


def analytics_ready(analytics: CatalogObject, now: dt.datetime) -> Notification:
    """Return the "analytics ready" notification of a catalogued analytics object."""
    return Notification(
        notification_id=notification_id_for(
            NotificationType.ANALYTICS_READY,
            analytics.rider_id,
            analytics.suit_id,
            analytics.log_id,
        ),
        type=NotificationType.ANALYTICS_READY,
        rider_id=analytics.rider_id,
        role=None,
        payload={
            "log_id": analytics.log_id,
            "suit_id": analytics.suit_id,
            "object_id": analytics.object_id,
            "crash": analytics.crash,
            "analytics_path": f"/api/v1/logs/{analytics.log_id}/analytics",
        },
        created_at=now,
    )


def crash_detected(
    objects: Sequence[CatalogObject],
    now: dt.datetime,
    *,
    gateway_id: str | None = None,
    details: Mapping[str, Any] | None = None,
) -> Notification:
    """Return the "crash detected" notification of a log's catalogued objects.

    Raises:
        ValueError: ``objects`` is empty.
    """
    if not objects:
        raise ValueError("crash notification: no objects")
    first = objects[0]
    events = (details or {}).get("events")
    return Notification(
        notification_id=notification_id_for(
            NotificationType.CRASH_DETECTED, first.rider_id, first.suit_id, first.log_id
        ),
        type=NotificationType.CRASH_DETECTED,
        rider_id=first.rider_id,
        role=None,
        payload={
            "log_id": first.log_id,
            "suit_id": first.suit_id,
            "gateway_id": gateway_id,
            "events": events if isinstance(events, list) else [],
            "object_ids": {
                item.object_type: item.object_id
                for item in objects
                if item.kind in (ObjectKind.RAW, ObjectKind.CRASH)
            },
        },
        created_at=now,
    )
