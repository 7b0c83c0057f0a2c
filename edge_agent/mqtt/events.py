"""Gateway events (``gateways/{id}/events``): build, check, read, de-duplicate.

Schema ``gateway-event/1``::

    {"schema": "gateway-event/1", "event_id": "<UUID>",
     "type": "log_uploaded" | "crash_detected", "gateway_id": "gw-1",
     "rider_id": "r1", "suit_id": "SUIT-0001", "log_id": "...",
     "object_keys": {"raw_csv": "raw/...", "analytics": "analytics/..."},
     "sha256": "<64 hex digits of the suit log>", "time_utc": "<ISO 8601>",
     "details": {...} | null}

Delivery is at least once: a subscriber sees an event again after a lost
PUBACK, a reconnect or a gateway restart, and drops repeats by
``event_id``. :func:`event_id_for` derives the id from gateway, type and
log, so an agent that enqueues again after a crash (it cannot know whether
the first enqueue committed) produces the same id, and the outbox keeps one
row.
"""

from __future__ import annotations

import json
import re
import uuid
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from .errors import MqttPayloadError
from .validation import (
    decode_object,
    optional_field,
    require_field,
    require_schema,
    require_uuid,
)

__all__ = [
    "EVENT_SCHEMA",
    "EventDeduplicator",
    "EventType",
    "GatewayEvent",
    "event_id_for",
    "parse_event",
]

EVENT_SCHEMA = "gateway-event/1"
EVENT_FAMILY = "gateway-event"
# Namespace of the name-based (UUID v5) event ids; fixed forever, since a
# change would give a re-enqueued event a new id.
EVENT_ID_NAMESPACE = uuid.UUID("5d0c6f53-3b7e-4d0a-9a59-6f1f2f0b8e41")
# Ids a subscriber-side de-duplicator remembers; repeats come minutes after
# the original, so 100,000 ids (a few MB) cover far more than that window.
DEDUP_CAPACITY = 100_000

_SHA256_HEX = re.compile(r"[0-9a-f]{64}")


class EventType(StrEnum):
    """What happened to a log."""

    LOG_UPLOADED = "log_uploaded"
    CRASH_DETECTED = "crash_detected"


def event_id_for(gateway_id: str, event_type: EventType | str, log_id: str) -> str:
    """Return the stable event id of ``event_type`` for one log on one gateway."""
    name = f"{gateway_id}/{EventType(event_type).value}/{log_id}"
    return str(uuid.uuid5(EVENT_ID_NAMESPACE, name))


def _utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


@dataclass(frozen=True)
class GatewayEvent:
    """One event for the cloud; build it with :meth:`create`."""

    event_id: str
    type: EventType
    gateway_id: str
    rider_id: str
    suit_id: str
    log_id: str
    object_keys: Mapping[str, str]
    sha256: str
    time_utc: str
    details: Mapping[str, Any] | None = field(default=None)

    @classmethod
    def create(
        cls,
        event_type: EventType | str,
        *,
        gateway_id: str,
        rider_id: str,
        suit_id: str,
        log_id: str,
        object_keys: Mapping[str, str],
        sha256: str,
        time_utc: str | None = None,
        details: Mapping[str, Any] | None = None,
        event_id: str | None = None,
    ) -> GatewayEvent:
        """Return an event with a stable id (see :func:`event_id_for`).

        Raises:
            ValueError: unknown event type.
        """
        kind = EventType(event_type)
        return cls(
            event_id=event_id or event_id_for(gateway_id, kind, log_id),
            type=kind,
            gateway_id=gateway_id,
            rider_id=rider_id,
            suit_id=suit_id,
            log_id=log_id,
            object_keys=dict(object_keys),
            sha256=sha256,
            time_utc=time_utc or _utc_now(),
            details=dict(details) if details is not None else None,
        )

    def to_document(self) -> dict[str, Any]:
        """Return the JSON document sent on the events topic."""
        return {
            "schema": EVENT_SCHEMA,
            "event_id": self.event_id,
            "type": self.type.value,
            "gateway_id": self.gateway_id,
            "rider_id": self.rider_id,
            "suit_id": self.suit_id,
            "log_id": self.log_id,
            "object_keys": dict(self.object_keys),
            "sha256": self.sha256,
            "time_utc": self.time_utc,
            "details": dict(self.details) if self.details is not None else None,
        }

    def to_payload(self) -> str:
        """Return the JSON text sent on the events topic."""
        return json.dumps(self.to_document(), separators=(",", ":"), sort_keys=True)


def check_event_document(document: Mapping[str, Any], topic: str) -> None:
    """Check an event document against ``gateway-event/1``.

    Raises:
        MqttPayloadError: names the topic and the first bad field.
    """
    require_schema(document, topic, EVENT_FAMILY)
    require_uuid(document, topic, "event_id")
    kind = require_field(document, topic, "type", str)
    if kind not in {member.value for member in EventType}:
        raise MqttPayloadError(
            topic,
            "type",
            f"expected one of {[member.value for member in EventType]}, found {kind!r}",
        )
    for name in ("gateway_id", "rider_id", "suit_id", "log_id", "time_utc"):
        if not require_field(document, topic, name, str):
            raise MqttPayloadError(topic, name, "must not be empty")
    keys = require_field(document, topic, "object_keys", dict)
    for name, key in keys.items():
        if not isinstance(key, str) or not key:
            raise MqttPayloadError(
                topic, f"object_keys.{name}", f"expected a key, found {key!r:.60}"
            )
    digest = require_field(document, topic, "sha256", str)
    if not _SHA256_HEX.fullmatch(digest):
        raise MqttPayloadError(
            topic, "sha256", f"expected 64 lower-case hex digits, found {digest!r:.80}"
        )
    try:
        datetime.fromisoformat(document["time_utc"])
    except ValueError as exc:
        raise MqttPayloadError(
            topic,
            "time_utc",
            f"expected an ISO 8601 time, found {document['time_utc']!r:.60}",
        ) from exc
    optional_field(document, topic, "details", dict)


def parse_event(topic: str, payload: bytes) -> dict[str, Any]:
    """Return the checked event document in ``payload`` (subscriber side).

    Raises:
        MqttPayloadError: not JSON, or a field breaks ``gateway-event/1``.
    """
    document = decode_object(topic, payload)
    check_event_document(document, topic)
    return document


class EventDeduplicator:
    """Remember recent event ids so a subscriber handles each event once.

    Memory is bounded: the oldest ids are forgotten past ``capacity``. A
    subscriber that must never double-count across its own restarts keeps
    the ids in its database instead (a unique constraint on ``event_id``).
    """

    def __init__(self, capacity: int = DEDUP_CAPACITY) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1, got {capacity}")
        self.capacity = capacity
        self.repeats = 0
        self._seen: OrderedDict[str, None] = OrderedDict()

    def first_time(self, event_id: str) -> bool:
        """Return True the first time ``event_id`` is seen, False on a repeat."""
        if event_id in self._seen:
            self._seen.move_to_end(event_id)
            self.repeats += 1
            return False
        self._seen[event_id] = None
        if len(self._seen) > self.capacity:
            self._seen.popitem(last=False)
        return True

    def __len__(self) -> int:
        return len(self._seen)
