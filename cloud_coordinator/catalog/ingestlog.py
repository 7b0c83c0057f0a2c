"""The ingest log and quarantine: what ingest workers remember in the catalog.

``ingest_events`` holds the id of every gateway event catalogued, written in
the same transaction as the event's notifications, so a redelivered event
(after a worker died before its acknowledgement) is recognised and neither
catalogued nor announced twice. ``ingest_quarantine`` keeps bad input aside
(events that break the schema, objects that are missing or do not match
their SHA-256) with the reason, counted per distinct payload: the same bad
message delivered again raises ``times_seen`` rather than adding a row.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from abc import abstractmethod
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

from .outbox import Notification, insert_notification_sql
from .sql import Dialect

__all__ = ["IngestSql", "IngestedEvent", "QuarantineEntry"]

# Keys per query when asking which of a listing's keys are catalogued.
EXISTING_KEYS_BATCH = 500
# Longest reason kept; a reason names the message, field and what was found.
MAX_REASON_CHARS = 2000


@dataclass(frozen=True)
class IngestedEvent:
    """A gateway event whose objects were catalogued."""

    event_id: str
    type: str
    gateway_id: str
    rider_id: str
    log_id: str
    objects: int
    processed_at: dt.datetime


@dataclass(frozen=True)
class QuarantineEntry:
    """Input kept aside: where it came from, why, and its bytes."""

    source: str
    reason: str
    payload: bytes
    event_id: str | None = None
    first_seen: dt.datetime | None = None
    last_seen: dt.datetime | None = None
    times_seen: int = 1
    quarantine_id: int = 0

    def fingerprint(self) -> str:
        """Return the id of this input (its source and bytes)."""
        digest = hashlib.sha256(self.source.encode())
        digest.update(b"\0")
        digest.update(self.payload)
        return digest.hexdigest()


class IngestSql:
    """Ingest-log methods of :class:`~.sqlbase.SqlCatalog`, on its hooks."""

    _dialect: Dialect

    @abstractmethod
    def _transaction(self, *, write: bool) -> AbstractContextManager[Any]:
        """Return a context that runs one transaction and yields its cursor."""

    def ingest_event_seen(self, event_id: str) -> bool:
        """Return whether the event was already catalogued."""
        with self._transaction(write=False) as cursor:
            cursor.execute(
                f"SELECT 1 FROM ingest_events WHERE event_id = {self._dialect.p('id')}",
                {"id": event_id},
            )
            return cursor.fetchone() is not None

    def record_ingest_event(
        self, event: IngestedEvent, notifications: Sequence[Notification] = ()
    ) -> bool:
        """Record a catalogued event and its notifications in one transaction.

        Returns False (and stores nothing) if the event was recorded before.
        """
        p = self._dialect.p
        names = (
            "event_id",
            "type",
            "gateway_id",
            "rider_id",
            "log_id",
            "objects",
            "processed_at",
        )
        checked = [notification.validated() for notification in notifications]
        with self._transaction(write=True) as cursor:
            cursor.execute(
                f"INSERT INTO ingest_events ({', '.join(names)}) VALUES "
                f"({', '.join(p(name) for name in names)}) "
                "ON CONFLICT (event_id) DO NOTHING RETURNING event_id",
                {
                    "event_id": event.event_id,
                    "type": event.type,
                    "gateway_id": event.gateway_id,
                    "rider_id": event.rider_id,
                    "log_id": event.log_id,
                    "objects": event.objects,
                    "processed_at": self._dialect.time_in(event.processed_at),
                },
            )
            if cursor.fetchone() is None:
                return False
            for notification in checked:
                statement, params = insert_notification_sql(self._dialect, notification)
                cursor.execute(statement, params)
                cursor.fetchall()
        return True

    def quarantine(self, entry: QuarantineEntry, at: dt.datetime) -> int:
        """Keep bad input aside; return its quarantine id.

        The same source and bytes again only count one more sighting.
        """
        p = self._dialect.p
        with self._transaction(write=True) as cursor:
            cursor.execute(
                "INSERT INTO ingest_quarantine (fingerprint, source, event_id, "
                "reason, payload, first_seen, last_seen, times_seen) VALUES "
                f"({p('fp')}, {p('source')}, {p('event_id')}, {p('reason')}, "
                f"{p('payload')}, {p('at')}, {p('at')}, 1) "
                "ON CONFLICT (fingerprint) DO UPDATE SET "
                "times_seen = ingest_quarantine.times_seen + 1, "
                "last_seen = excluded.last_seen, reason = excluded.reason "
                "RETURNING quarantine_id",
                {
                    "fp": entry.fingerprint(),
                    "source": entry.source,
                    "event_id": entry.event_id,
                    "reason": entry.reason[:MAX_REASON_CHARS],
                    "payload": entry.payload,
                    "at": self._dialect.time_in(at),
                },
            )
            row = cursor.fetchone()
        return int(row[0])

    def list_quarantine(self, *, limit: int) -> list[QuarantineEntry]:
        """Return the most recently seen quarantined inputs first."""
        with self._transaction(write=False) as cursor:
            cursor.execute(
                "SELECT quarantine_id, source, event_id, reason, payload, "
                "first_seen, last_seen, times_seen FROM ingest_quarantine "
                f"ORDER BY last_seen DESC, quarantine_id DESC "
                f"LIMIT {self._dialect.p('limit')}",
                {"limit": max(1, min(int(limit), 1000))},
            )
            rows = cursor.fetchall()
        return [
            QuarantineEntry(
                source=source,
                reason=reason,
                payload=bytes(payload),
                event_id=event_id,
                first_seen=self._dialect.time_out(first),
                last_seen=self._dialect.time_out(last),
                times_seen=int(times),
                quarantine_id=int(ident),
            )
            for ident, source, event_id, reason, payload, first, last, times in rows
        ]

    def existing_object_keys(self, bucket: str, keys: Sequence[str]) -> set[str]:
        """Return which of ``keys`` in ``bucket`` are catalogued."""
        p = self._dialect.p
        found: set[str] = set()
        for start in range(0, len(keys), EXISTING_KEYS_BATCH):
            chunk = keys[start : start + EXISTING_KEYS_BATCH]
            params: dict[str, Any] = {"bucket": bucket}
            names = []
            for index, key in enumerate(chunk):
                params[f"k{index}"] = key
                names.append(p(f"k{index}"))
            with self._transaction(write=False) as cursor:
                cursor.execute(
                    f"SELECT object_key FROM objects WHERE bucket = {p('bucket')} "
                    f"AND object_key IN ({', '.join(names)})",
                    params,
                )
                found.update(row[0] for row in cursor.fetchall())
        return found
