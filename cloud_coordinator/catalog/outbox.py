"""The notification outbox: notifications recorded in the catalog.

A notification is written once the change it announces is committed (an
object catalogued, a raw deletion scheduled) and read afterwards by the
WebSocket server (per user, after a sequence number) and by the MQTT relay
(crash events for R&D and technicians). Writing them in the catalog, not
sending them directly, means nothing is announced that did not commit, and
nothing committed goes unannounced if a sender dies: readers catch up.

``notification_id`` is the id clients de-duplicate on. Callers that may
record the same notification twice (ingest after a redelivered event,
reconciliation after ingest) pass a deterministic id; the second write is
ignored. ``seq`` orders the outbox and is the resume point.

Who sees a notification: if ``rider_id`` is set, users whose scope holds
that rider (the rider, their technician if professional, R&D, admins); if
``role`` is set, only users of that role. Both set: both conditions.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from abc import abstractmethod
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from .errors import InvalidRecord
from .models import check_identifier
from .sql import Dialect

__all__ = [
    "MAX_PAYLOAD_BYTES",
    "Notification",
    "NotificationAudience",
    "NotificationType",
    "OutboxSql",
    "insert_notification_sql",
    "iter_notifications",
]

# A notification announces something and links to it; the data itself is
# fetched through the API. 16 kB is far above any announcement.
MAX_PAYLOAD_BYTES = 16 * 1024
_ROLES = ("rider", "technician", "rnd", "admin")
_COLUMNS = (
    "seq",
    "notification_id",
    "type",
    "rider_id",
    "role",
    "payload",
    "created_at",
    "published_at",
)


class NotificationType(StrEnum):
    """What a notification announces."""

    ANALYTICS_READY = "analytics_ready"
    CRASH_DETECTED = "crash_detected"
    RAW_DELETION_SCHEDULED = "raw_deletion_scheduled"


@dataclass(frozen=True)
class Notification:
    """One notification as stored (``seq`` 0 before it is stored)."""

    notification_id: str
    type: NotificationType
    rider_id: str | None
    role: str | None
    payload: Mapping[str, Any]
    created_at: dt.datetime
    seq: int = 0
    published_at: dt.datetime | None = field(default=None)

    def validated(self) -> Notification:
        """Return the notification after checking every field.

        Raises:
            InvalidRecord: the first malformed field, named in the message.
        """
        where = f"notification {self.notification_id!r}"
        try:
            kind = NotificationType(self.type)
            check_identifier("notification_id", self.notification_id)
            if self.rider_id is not None:
                check_identifier("rider_id", self.rider_id)
        except ValueError as exc:
            raise InvalidRecord(f"{where}: {exc}") from exc
        if self.role is not None and self.role not in _ROLES:
            raise InvalidRecord(f"{where}: role {self.role!r} not one of {_ROLES}")
        if self.rider_id is None and self.role is None:
            raise InvalidRecord(f"{where}: needs a rider_id, a role or both")
        if self.created_at.tzinfo is None:
            raise InvalidRecord(f"{where}: created_at has no time zone")
        if len(self.payload_json()) > MAX_PAYLOAD_BYTES:
            raise InvalidRecord(f"{where}: payload above {MAX_PAYLOAD_BYTES} bytes")
        return dataclasses.replace(self, type=kind)

    def payload_json(self) -> str:
        """Return the payload as stored (compact JSON)."""
        return json.dumps(dict(self.payload), separators=(",", ":"), sort_keys=True)


@dataclass(frozen=True)
class NotificationAudience:
    """Whose notifications to read: a role and the scope of a principal.

    ``rider_id`` set: that rider's only. ``technician_id`` set: the
    professional riders assigned to that technician. Neither: every rider
    (R&D, admins). Role-addressed notifications match on ``role``.
    """

    role: str
    rider_id: str | None = None
    technician_id: str | None = None


def insert_notification_sql(
    dialect: Dialect, notification: Notification
) -> tuple[str, dict[str, Any]]:
    """Return the INSERT of a checked notification (RETURNING seq; none if known)."""
    names = _COLUMNS[1:-1]
    statement = (
        f"INSERT INTO notifications ({', '.join(names)}) VALUES "
        f"({', '.join(dialect.p(name) for name in names)}) "
        "ON CONFLICT (notification_id) DO NOTHING RETURNING seq"
    )
    params = {
        "notification_id": notification.notification_id,
        "type": notification.type.value,
        "rider_id": notification.rider_id,
        "role": notification.role,
        "payload": notification.payload_json(),
        "created_at": dialect.time_in(notification.created_at),
    }
    return statement, params


class OutboxSql:
    """Outbox methods of :class:`~.sqlbase.SqlCatalog`, on its hooks."""

    _dialect: Dialect

    @abstractmethod
    def _transaction(self, *, write: bool) -> AbstractContextManager[Any]:
        """Return a context that runs one transaction and yields its cursor."""

    def _row_to_notification(self, row: Sequence[Any]) -> Notification:
        values = dict(zip(_COLUMNS, row, strict=True))
        created = self._dialect.time_out(values["created_at"])
        assert created is not None
        return Notification(
            notification_id=values["notification_id"],
            type=NotificationType(values["type"]),
            rider_id=values["rider_id"],
            role=values["role"],
            payload=json.loads(values["payload"]),
            created_at=created,
            seq=int(values["seq"]),
            published_at=self._dialect.time_out(values["published_at"]),
        )

    def add_notification(self, notification: Notification) -> bool:
        """Store a notification; return False if its id was already stored."""
        statement, params = insert_notification_sql(
            self._dialect, notification.validated()
        )
        with self._transaction(write=True) as cursor:
            cursor.execute(statement, params)
            return cursor.fetchone() is not None

    def notification_seq(self, notification_id: str) -> int | None:
        """Return the sequence number of a stored notification, if any."""
        with self._transaction(write=False) as cursor:
            cursor.execute(
                "SELECT seq FROM notifications WHERE notification_id = "
                f"{self._dialect.p('id')}",
                {"id": notification_id},
            )
            row = cursor.fetchone()
        return None if row is None else int(row[0])

    def last_notification_seq(self) -> int:
        """Return the highest sequence number stored (0: none)."""
        with self._transaction(write=False) as cursor:
            cursor.execute("SELECT max(seq) FROM notifications")
            row = cursor.fetchone()
        return 0 if row is None or row[0] is None else int(row[0])

    def list_notifications(
        self, audience: NotificationAudience | None, *, after_seq: int, limit: int
    ) -> list[Notification]:
        """Return ``audience``'s notifications after ``after_seq``, oldest first.

        ``audience`` None: every notification (the WebSocket hub's feed).
        """
        p = self._dialect.p
        params: dict[str, Any] = {
            "after": int(after_seq),
            "limit": max(1, min(int(limit), 1000)),
        }
        if audience is None:
            with self._transaction(write=False) as cursor:
                cursor.execute(
                    f"SELECT {', '.join(_COLUMNS)} FROM notifications "
                    f"WHERE seq > {p('after')} ORDER BY seq LIMIT {p('limit')}",
                    params,
                )
                rows = cursor.fetchall()
            return [self._row_to_notification(row) for row in rows]
        params["role"] = audience.role
        if audience.rider_id is not None:
            params["rider"] = audience.rider_id
            riders = f"rider_id = {p('rider')}"
        elif audience.technician_id is not None:
            params["technician"] = audience.technician_id
            riders = (
                "rider_id IN (SELECT rider_id FROM riders WHERE technician_id = "
                f"{p('technician')} AND user_type = 'professional')"
            )
        else:
            riders = "1 = 1"
        with self._transaction(write=False) as cursor:
            cursor.execute(
                f"SELECT {', '.join(_COLUMNS)} FROM notifications "
                f"WHERE seq > {p('after')} "
                f"AND (rider_id IS NULL OR {riders}) "
                f"AND (role IS NULL OR role = {p('role')}) "
                f"ORDER BY seq LIMIT {p('limit')}",
                params,
            )
            rows = cursor.fetchall()
        return [self._row_to_notification(row) for row in rows]

    def list_unpublished_notifications(
        self, types: Sequence[NotificationType], *, limit: int
    ) -> list[Notification]:
        """Return notifications of ``types`` not yet published, oldest first."""
        p = self._dialect.p
        params: dict[str, Any] = {"limit": max(1, min(int(limit), 1000))}
        names = []
        for index, kind in enumerate(types):
            params[f"t{index}"] = NotificationType(kind).value
            names.append(p(f"t{index}"))
        if not names:
            return []
        with self._transaction(write=False) as cursor:
            cursor.execute(
                f"SELECT {', '.join(_COLUMNS)} FROM notifications "
                f"WHERE published_at IS NULL AND type IN ({', '.join(names)}) "
                f"ORDER BY seq LIMIT {p('limit')}",
                params,
            )
            rows = cursor.fetchall()
        return [self._row_to_notification(row) for row in rows]

    def publish_notifications(
        self,
        types: Sequence[NotificationType],
        publish: Callable[[Notification], None],
        at: dt.datetime,
        *,
        limit: int,
    ) -> int:
        """Publish unpublished notifications of ``types``; return how many.

        Runs in one write transaction: the rows are locked (PostgreSQL:
        ``FOR UPDATE SKIP LOCKED``, so concurrent relays take different
        rows; SQLite: the write lock), ``publish`` is called for each, and
        they are marked published at commit. If ``publish`` raises, nothing
        is marked and the error propagates; the rows go out again later.
        """
        p = self._dialect.p
        params: dict[str, Any] = {"limit": max(1, min(int(limit), 1000))}
        names = []
        for index, kind in enumerate(types):
            params[f"t{index}"] = NotificationType(kind).value
            names.append(p(f"t{index}"))
        if not names:
            return 0
        lock = ""
        if self._dialect.for_update:
            lock = f"{self._dialect.for_update} SKIP LOCKED"
        with self._transaction(write=True) as cursor:
            cursor.execute(
                f"SELECT {', '.join(_COLUMNS)} FROM notifications "
                f"WHERE published_at IS NULL AND type IN ({', '.join(names)}) "
                f"ORDER BY seq LIMIT {p('limit')}{lock}",
                params,
            )
            pending = [self._row_to_notification(row) for row in cursor.fetchall()]
            for notification in pending:
                publish(notification)
                cursor.execute(
                    f"UPDATE notifications SET published_at = {p('at')} "
                    f"WHERE seq = {p('seq')}",
                    {"at": self._dialect.time_in(at), "seq": notification.seq},
                )
        return len(pending)

    def mark_notifications_published(
        self, notification_ids: Sequence[str], at: dt.datetime
    ) -> int:
        """Record that notifications went out on MQTT; return how many changed."""
        p = self._dialect.p
        changed = 0
        with self._transaction(write=True) as cursor:
            for notification_id in notification_ids:
                cursor.execute(
                    f"UPDATE notifications SET published_at = {p('at')} "
                    f"WHERE notification_id = {p('id')} AND published_at IS NULL "
                    "RETURNING seq",
                    {"at": self._dialect.time_in(at), "id": notification_id},
                )
                changed += len(cursor.fetchall())
        return changed


def iter_notifications(
    outbox: OutboxSql, audience: NotificationAudience, after_seq: int, page: int
) -> Iterator[Notification]:
    """Yield every notification of ``audience`` after ``after_seq``."""
    while True:
        batch = outbox.list_notifications(audience, after_seq=after_seq, limit=page)
        yield from batch
        if len(batch) < page:
            return
        after_seq = batch[-1].seq
