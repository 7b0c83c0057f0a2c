"""Catalogue one gateway event: check it, verify its objects, index, announce.

Steps for a ``log_uploaded`` or ``crash_detected`` event on
``gateways/{id}/events``:

1. parse it against ``gateway-event/1``; the gateway in the payload must be
   the one in the topic (the broker's ACL vouches for the topic);
2. drop it if its ``event_id`` was catalogued before (a redelivery);
3. verify every object it names (:mod:`.verify`): present, catalogued
   bucket, metadata naming the event's rider, suit and log, SHA-256;
4. upsert them with the gateway id and the log's crash verdict (the event
   type, a crash object, or the analytics document's ``crash.detected``);
5. record the event id and its notifications in one transaction.

Bad input raises :class:`~.errors.RejectedInput` (the caller quarantines and
acknowledges it); store and catalog outages raise their own errors and the
caller retries. Every step is idempotent, so a worker that dies anywhere in
between handles the redelivered event correctly.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from enum import StrEnum
from pathlib import Path
from typing import Any

from edge_agent.mqtt.errors import MqttPayloadError
from edge_agent.mqtt.events import EventType, parse_event
from edge_agent.upload import BucketNames, ObjectStore

from ..broker.topics import gateway_of_events_topic
from ..catalog import Catalog, CatalogObject, ObjectKind, UpsertOutcome
from ..catalog.ingestlog import IngestedEvent
from ..catalog.sqlbase import utc_now
from ..config import BrokerConfig
from ..notify import Notification
from .errors import BadEvent, BadObject
from .notices import (
    analytics_ready,
    crash_detected,
    crash_events_of_analytics,
    crash_of_analytics,
)
from .stats import IngestStats
from .verify import VerifiedObject, VerifyMode, verify_object

__all__ = ["EventOutcome", "EventProcessor"]

_LOGGER = logging.getLogger(__name__)


class EventOutcome(StrEnum):
    """What became of an event."""

    CATALOGUED = "catalogued"
    DUPLICATE = "duplicate"


@dataclass(frozen=True)
class _Checked:
    event: dict[str, Any]
    gateway_id: str


class EventProcessor:
    """Catalogue gateway events; see the module docstring."""

    def __init__(
        self,
        catalog: Catalog,
        store: ObjectStore,
        *,
        broker: BrokerConfig,
        buckets: BucketNames | None = None,
        verify: VerifyMode = VerifyMode.HASH,
        stats: IngestStats | None = None,
        temp_dir: Path | None = None,
        clock: Callable[[], dt.datetime] = utc_now,
    ) -> None:
        """Catalogue into ``catalog`` objects found in ``store``."""
        self.catalog = catalog
        self.store = store
        self.broker = broker
        self.buckets = buckets or BucketNames()
        self.verify = verify
        self.stats = stats or IngestStats()
        self.temp_dir = temp_dir
        self.clock = clock

    def _check(self, topic: str, payload: bytes) -> _Checked:
        gateway_id = gateway_of_events_topic(self.broker, topic)
        if gateway_id is None:
            raise BadEvent(f"topic {topic!r}: not a gateway events topic")
        try:
            event = parse_event(topic, payload)
        except MqttPayloadError as exc:
            raise BadEvent(str(exc)) from exc
        if event["gateway_id"] != gateway_id:
            raise BadEvent(
                f"topic {topic!r}, field 'gateway_id': names gateway "
                f"{event['gateway_id']!r}, but was published by {gateway_id!r}"
            )
        return _Checked(event, gateway_id)

    def _verified(self, event: Mapping[str, Any]) -> dict[str, VerifiedObject]:
        rider = self.catalog.get_rider(event["rider_id"])
        found: dict[str, VerifiedObject] = {}
        for name, ref in sorted(event["object_keys"].items()):
            bucket, _, key = str(ref).partition("/")
            if not bucket or not key:
                raise BadEvent(
                    f"event {event['event_id']}, field 'object_keys.{name}': "
                    f"{ref!r} is not 'bucket/key'"
                )
            existing = self.catalog.get_object_by_key(bucket, key)
            verified = verify_object(
                self.store,
                self.buckets,
                bucket,
                key,
                mode=self.verify,
                rider=rider,
                known_sha256=None if existing is None else existing.sha256_hex,
                temp_dir=self.temp_dir,
            )
            record = verified.record
            for field in ("rider_id", "suit_id", "log_id"):
                if getattr(record, field) != event[field]:
                    raise BadObject(
                        f"object {bucket}/{key}: metadata {field} "
                        f"{getattr(record, field)!r}, but event "
                        f"{event['event_id']} says {event[field]!r}"
                    )
            found[name] = verified
        return found

    def _analytics_bytes(self, objects: Mapping[str, VerifiedObject]) -> bytes | None:
        for item in objects.values():
            if item.record.kind is ObjectKind.ANALYTICS:
                if item.data is not None:
                    return item.data
                return self.store.get_object(item.info.bucket, item.info.key)
        return None

    def _crash_verdict(
        self, event: Mapping[str, Any], objects: Mapping[str, VerifiedObject]
    ) -> tuple[bool | None, dict[str, Any]]:
        """Return the log's crash verdict and the crash details to announce.

        The details are the event's, else the analytics document's crash
        events, so both events of a crash log announce the same content.
        """
        analytics = self._analytics_bytes(objects)
        details = dict(event.get("details") or {})
        if not details.get("events"):
            details["events"] = crash_events_of_analytics(analytics)
        if event["type"] == EventType.CRASH_DETECTED.value:
            return True, details
        if any(item.record.kind is ObjectKind.CRASH for item in objects.values()):
            return True, details
        return crash_of_analytics(analytics), details

    def handle(self, topic: str, payload: bytes) -> EventOutcome:
        """Catalogue the event in one message.

        Raises:
            RejectedInput: bad event or object (quarantine it).
            StorageError, CatalogError: a transient failure; retry.
        """
        checked = self._check(topic, payload)
        event = checked.event
        who = f"gateway {checked.gateway_id}, event {event['event_id']}"
        if self.catalog.ingest_event_seen(event["event_id"]):
            self.stats.add(duplicates=1)
            _LOGGER.debug("%s: already catalogued", who)
            return EventOutcome.DUPLICATE

        objects = self._verified(event)
        crash, details = self._crash_verdict(event, objects)
        stored: dict[str, CatalogObject] = {}
        changed = unchanged = 0
        for name, item in objects.items():
            record = replace(item.record, crash=crash, gateway_id=checked.gateway_id)
            result = self.catalog.upsert_object(record)
            stored[name] = result.object
            if result.outcome is UpsertOutcome.UNCHANGED:
                unchanged += 1
            else:
                changed += 1

        now = self.clock()
        notifications: list[Notification] = []
        for catalogued in stored.values():
            if catalogued.kind is ObjectKind.ANALYTICS:
                notifications.append(analytics_ready(catalogued, now))
        if crash and stored:
            notifications.append(
                crash_detected(
                    list(stored.values()),
                    now,
                    gateway_id=checked.gateway_id,
                    details=details,
                )
            )
        recorded = self.catalog.record_ingest_event(
            IngestedEvent(
                event_id=event["event_id"],
                type=event["type"],
                gateway_id=checked.gateway_id,
                rider_id=event["rider_id"],
                log_id=event["log_id"],
                objects=len(stored),
                processed_at=now,
            ),
            notifications,
        )
        if not recorded:
            # Another worker finished the same event meanwhile.
            self.stats.add(duplicates=1)
            return EventOutcome.DUPLICATE
        self.stats.add(
            events=1, objects_catalogued=changed, objects_unchanged=unchanged
        )
        _LOGGER.info(
            "%s: %s of log %s catalogued (%d new or updated, %d unchanged%s)",
            who,
            event["type"],
            event["log_id"],
            changed,
            unchanged,
            ", crash" if crash else "",
        )
        return EventOutcome.CATALOGUED
