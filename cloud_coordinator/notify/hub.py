"""Fan the outbox out to WebSocket connections: one catalog poll per process.

Each API process runs one :class:`NotificationHub` task while at least one
WebSocket is open. It reads notifications newer than what it has seen every
:data:`POLL_S` (one query, whatever the number of connections) and puts
each into the queue of every subscriber; each connection then applies its
user's scope. The task ends when the last subscriber leaves.

Sequence numbers are handed out at insert but become visible at commit, so
two writers can commit out of order. The hub therefore re-reads the last
:data:`REREAD_ROWS` sequence numbers each time and drops ids it has already
fanned out; a notification committed more than that many rows late would
be missed by live connections (a client that reconnects with ``after`` of an
earlier id still gets it, unless it resumes past it). Clients de-duplicate
by id in any case.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict

from starlette.concurrency import run_in_threadpool

from ..catalog import Catalog, CatalogError
from ..catalog.outbox import Notification

__all__ = ["NotificationHub", "Subscription"]

_LOGGER = logging.getLogger(__name__)

# Half a second between catalog reads: notifications arrive within a
# second of the commit, at one cheap indexed query per process.
POLL_S = 0.5
# Rows re-read behind the newest seen, for writers that commit late.
REREAD_ROWS = 200
# Rows per read; more are read at once when a burst is pending.
READ_BATCH = 500
# Notifications queued for one slow connection before it is dropped (the
# client reconnects with ``after`` and loses nothing).
SUBSCRIBER_QUEUE = 1000
# Ids remembered to drop re-read rows.
SEEN_IDS = 10_000
# Back-off after a failed catalog read.
ERROR_PAUSE_S = 5.0


class Subscription:
    """One connection's queue of notifications."""

    def __init__(self) -> None:
        """Create an empty, bounded queue."""
        self.queue: asyncio.Queue[Notification] = asyncio.Queue(SUBSCRIBER_QUEUE)
        self.overflowed = False

    def offer(self, notification: Notification) -> None:
        """Queue a notification, or mark the subscription as overflowed."""
        try:
            self.queue.put_nowait(notification)
        except asyncio.QueueFull:
            self.overflowed = True


class NotificationHub:
    """Poll the outbox for one API process; see the module docstring."""

    def __init__(self, catalog: Catalog, *, poll_s: float = POLL_S) -> None:
        """Read ``catalog`` every ``poll_s`` while someone listens."""
        self._catalog = catalog
        self._poll_s = poll_s
        self._subscribers: set[Subscription] = set()
        self._task: asyncio.Task[None] | None = None
        self._cursor: int | None = None
        # Notifications up to here existed before the hub started: not new.
        self._floor = 0
        self._seen: OrderedDict[str, None] = OrderedDict()

    @property
    def cursor(self) -> int | None:
        """Return the newest sequence number fanned out (None: not started)."""
        return self._cursor

    async def subscribe(self) -> Subscription:
        """Return a new subscription; start polling if nobody listened."""
        if self._cursor is None:
            self._cursor = await run_in_threadpool(self._catalog.last_notification_seq)
            self._floor = self._cursor
        subscription = Subscription()
        self._subscribers.add(subscription)
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(
                self._run(), name="notification-hub"
            )
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        """Stop feeding ``subscription``; the hub stops with the last one."""
        self._subscribers.discard(subscription)

    async def close(self) -> None:
        """Stop the polling task."""
        self._subscribers.clear()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def _first_time(self, notification_id: str) -> bool:
        if notification_id in self._seen:
            return False
        self._seen[notification_id] = None
        if len(self._seen) > SEEN_IDS:
            self._seen.popitem(last=False)
        return True

    async def _read_once(self) -> int:
        assert self._cursor is not None
        after = max(0, self._cursor - REREAD_ROWS)
        items = await run_in_threadpool(
            self._catalog.list_notifications, None, after_seq=after, limit=READ_BATCH
        )
        for notification in items:
            self._cursor = max(self._cursor, notification.seq)
            if notification.seq <= self._floor:
                continue
            if not self._first_time(notification.notification_id):
                continue
            for subscription in list(self._subscribers):
                subscription.offer(notification)
        return len(items)

    async def _run(self) -> None:
        while self._subscribers:
            try:
                read = await self._read_once()
            except CatalogError as exc:
                _LOGGER.warning(
                    "notifications: outbox read failed: %s; retrying in %.0f s",
                    exc,
                    ERROR_PAUSE_S,
                )
                await asyncio.sleep(ERROR_PAUSE_S)
                continue
            if read < READ_BATCH:
                await asyncio.sleep(self._poll_s)
