"""Notifications: the outbox in the catalog, the WebSocket feed, the MQTT relay.

Code that commits a change users should hear about calls
:func:`record_notification` after its commit. Readers deliver from the
outbox: the results API's WebSocket (``/api/v1/notifications/ws``) per
user and scope, and the relay that publishes crash events on MQTT
``cloud/events`` for R&D and technicians.
"""

from ..catalog.outbox import (
    Notification,
    NotificationAudience,
    NotificationType,
    iter_notifications,
)
from .record import NOTIFICATION_ID_NAMESPACE, notification_id_for, record_notification

__all__ = [
    "NOTIFICATION_ID_NAMESPACE",
    "Notification",
    "NotificationAudience",
    "NotificationType",
    "iter_notifications",
    "notification_id_for",
    "record_notification",
]
