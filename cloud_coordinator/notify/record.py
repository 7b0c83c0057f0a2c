"""Record a notification in the catalog's outbox, after the change it announces.

Call :func:`record_notification` once your own catalog write committed (an
object catalogued, a raw deletion scheduled). The WebSocket server and the
MQTT relay pick it up from the outbox; nothing is sent from here, so a
notification never goes out for a change that did not commit.

Pass ``notification_id=notification_id_for(...)`` when the same notice may be
recorded twice (a redelivered event, a job that runs again): the id is
derived from what it is about, so the second call stores nothing and clients
see one notification.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Mapping
from typing import Any

from ..catalog import Catalog, InvalidRecord
from ..catalog.outbox import Notification, NotificationType

__all__ = ["NOTIFICATION_ID_NAMESPACE", "notification_id_for", "record_notification"]

_LOGGER = logging.getLogger(__name__)

# Namespace of derived notification ids (UUID v5); fixed forever, or a
# notice recorded again after an upgrade would get a new id.
NOTIFICATION_ID_NAMESPACE = uuid.UUID("8e0f3a52-6c1d-4b7e-9f45-2d6a0c9b7e13")


def notification_id_for(kind: NotificationType | str, *subject: str) -> str:
    """Return the stable id of a ``kind`` notification about ``subject``.

    ``subject`` names what it announces, for example the rider and log id,
    or the rider, object key and deletion date.
    """
    name = "/".join((NotificationType(kind).value, *subject))
    return str(uuid.uuid5(NOTIFICATION_ID_NAMESPACE, name))


def record_notification(
    catalog: Catalog,
    *,
    type: NotificationType | str,
    payload: Mapping[str, Any],
    rider_id: str | None = None,
    role: str | None = None,
    notification_id: str | None = None,
    created_at: dt.datetime | None = None,
) -> str:
    """Store a notification in the outbox; return its id.

    Args:
        catalog: the catalog the announced change was committed to.
        type: ``analytics_ready``, ``crash_detected`` or
            ``raw_deletion_scheduled``.
        payload: JSON-able details (log id, object ids, deletion date...);
            at most 16 kB.
        rider_id: the rider it is about; users whose scope holds that rider
            receive it.
        role: only users of this role (``rider``, ``technician``, ``rnd``,
            ``admin``) receive it; with ``rider_id``, both must hold.
        notification_id: a stable id (see :func:`notification_id_for`);
            default a new random UUID.
        created_at: default now (UTC).

    Raises:
        InvalidRecord: unknown type or role, neither rider nor role, a
            malformed id, or a payload too big or not JSON-able.
        CatalogUnavailable: the catalog cannot be reached; retry.
    """
    notification_id = notification_id or str(uuid.uuid4())
    try:
        kind = NotificationType(type)
    except ValueError as exc:
        raise InvalidRecord(
            f"notification {notification_id}: unknown type {type!r}; expected "
            f"one of {[member.value for member in NotificationType]}"
        ) from exc
    try:
        notification = Notification(
            notification_id=notification_id,
            type=kind,
            rider_id=rider_id,
            role=role,
            payload=dict(payload),
            created_at=created_at or dt.datetime.now(dt.UTC),
        )
        notification.payload_json()
    except (TypeError, ValueError) as exc:
        raise InvalidRecord(
            f"notification {notification_id}: payload is not JSON: {exc}"
        ) from exc
    if catalog.add_notification(notification):
        _LOGGER.debug(
            "notification %s: %s for rider %s role %s recorded",
            notification_id,
            kind.value,
            rider_id,
            role,
        )
    return notification_id
