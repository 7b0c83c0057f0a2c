"""Publish crash (and analytics) notifications on MQTT ``cloud/events``.

R&D and technician tools follow ``cloud/events`` (the broker's ACL lets
them read it). The relay reads notifications not yet published from the
outbox, publishes each (QoS 1, waiting for the PUBACK) and marks it
published in the same catalog transaction, which locks the rows so that
the relays of several workers take different ones. Every committed
notification goes out at least once, also after a crash of the relay;
receivers drop the rare repeat by ``id``.

Payload (schema ``cloud-event/1``)::

    {"schema": "cloud-event/1", "id": "<notification id>",
     "type": "crash_detected" | "analytics_ready", "rider_id": "...",
     "created_at": "<ISO 8601>", "payload": {...}}

Known limit: every reader of ``cloud/events`` gets every event; a
technician's tool must filter on its riders (the WebSocket does scope).
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable
from typing import Any

from ..broker import BrokerError, CloudMqttClient
from ..catalog import Catalog, CatalogError
from ..catalog.sqlbase import utc_now
from ..notify import Notification, NotificationType
from .stats import IngestStats

__all__ = ["CLOUD_EVENT_SCHEMA", "NotificationRelay", "cloud_event_document"]

_LOGGER = logging.getLogger(__name__)

CLOUD_EVENT_SCHEMA = "cloud-event/1"
# Notifications published per outbox read; a burst of crashes is small.
RELAY_BATCH = 100


def cloud_event_document(notification: Notification) -> dict[str, Any]:
    """Return the ``cloud/events`` document of a notification."""
    return {
        "schema": CLOUD_EVENT_SCHEMA,
        "id": notification.notification_id,
        "type": notification.type.value,
        "rider_id": notification.rider_id,
        "created_at": notification.created_at.isoformat(),
        "payload": dict(notification.payload),
    }


class NotificationRelay:
    """Publish unpublished notifications of some types; see the module doc."""

    def __init__(
        self,
        catalog: Catalog,
        client: CloudMqttClient,
        topic: str,
        *,
        types: tuple[NotificationType, ...] = (NotificationType.CRASH_DETECTED,),
        stats: IngestStats | None = None,
        clock: Callable[[], dt.datetime] = utc_now,
    ) -> None:
        """Relay ``types`` from ``catalog`` to ``topic`` through ``client``."""
        self.catalog = catalog
        self.client = client
        self.topic = topic
        self.types = types
        self.stats = stats or IngestStats()
        self.clock = clock

    def publish_pending(self) -> int:
        """Publish what is pending now; return how many went out.

        Raises:
            BrokerError: a publish failed (the rest waits for the next call).
            CatalogError: the outbox could not be read or marked.
        """
        sent = 0
        # The outbox rows stay locked while a publish waits; do not wait for
        # a broker that is known to be away (a SQLite catalog would block
        # every writer meanwhile).
        if not self.client.connected:
            return 0
        while True:
            count = self.catalog.publish_notifications(
                self.types, self._publish, self.clock(), limit=RELAY_BATCH
            )
            sent += count
            if count < RELAY_BATCH:
                break
        if sent:
            self.stats.add(published=sent)
            _LOGGER.info("relay: %d notifications published on %s", sent, self.topic)
        return sent

    def _publish(self, notification: Notification) -> None:
        self.client.publish(self.topic, cloud_event_document(notification))

    def run(self, stop: threading.Event, interval_s: float) -> None:
        """Publish pending notifications every ``interval_s`` until ``stop``."""
        while not stop.is_set():
            try:
                self.publish_pending()
            except (BrokerError, CatalogError) as exc:
                _LOGGER.warning("relay: %s; retrying in %.0f s", exc, interval_s)
            stop.wait(interval_s)
