"""Move outbox rows into the live session, and PUBACKs back into the outbox.

Per connection the publisher starts again from the oldest pending row (the
cursor is the outbox ``seq``) and keeps at most ``max_inflight`` events
unacknowledged. PUBACKs gathered during one tick are committed in one
transaction. A row whose PUBACK carries a failure stays pending until the
next connection; after :data:`~.outbox.MAX_REFUSALS` it is set aside.
"""

from __future__ import annotations

import logging
import threading

from .errors import OutboxError
from .outbox import Outbox
from .session import LinkSession, SessionAcks
from .stats import LinkStats

__all__ = ["OutboxPublisher"]

_LOGGER = logging.getLogger(__name__)

# Prune delivered outbox rows after this many deliveries: rare enough to
# cost nothing, often enough to bound the file.
PRUNE_EVERY_DELIVERIES = 500


class OutboxPublisher:
    """Feed pending events to a session and record what the broker acknowledged."""

    def __init__(self, outbox: Outbox, stats: LinkStats, label: str) -> None:
        self.outbox = outbox
        self.stats = stats
        self.label = label
        self._feed_needed = threading.Event()
        self._feed_needed.set()
        self._cursor_seq = 0
        self._deliveries_since_prune = 0

    def wake(self) -> None:
        """Note that new rows may be pending (any thread)."""
        self._feed_needed.set()

    def begin_connection(self) -> None:
        """Start over from the oldest pending row (a new connection)."""
        self._cursor_seq = 0
        self._feed_needed.set()

    def feed(self, session: LinkSession) -> None:
        """Publish pending events after the cursor into the free slots."""
        free = session.free_slots()
        if free <= 0 or not self._feed_needed.is_set():
            return
        # Clear before reading: a row committed after the read sets it again.
        self._feed_needed.clear()
        try:
            entries = self.outbox.pending_after(self._cursor_seq, free)
        except OutboxError as exc:
            _LOGGER.error("%s: cannot read the outbox: %s", self.label, exc)
            self._feed_needed.set()
            return
        for entry in entries:
            if not session.publish_event(entry):
                self._feed_needed.set()
                return
            self._cursor_seq = entry.seq
            self.stats.events_sent += 1
        if len(entries) == free:
            # A full page: there may be more behind it.
            self._feed_needed.set()

    def settle(self, acks: SessionAcks) -> None:
        """Commit PUBACKs and refusals gathered since the last call."""
        if not acks.delivered and not acks.refused:
            return
        self._feed_needed.set()
        try:
            delivered = self.outbox.mark_delivered(acks.delivered)
            for event_id, reason in acks.refused:
                self._refused(event_id, reason)
        except OutboxError as exc:
            # The rows stay pending and go out again on the next connection;
            # subscribers drop the repeats.
            _LOGGER.error("%s: cannot record PUBACKs: %s", self.label, exc)
            return
        self.stats.events_delivered += delivered
        if delivered:
            _LOGGER.info("%s: %d event(s) delivered", self.label, delivered)
        self._deliveries_since_prune += delivered
        if self._deliveries_since_prune >= PRUNE_EVERY_DELIVERIES:
            self._deliveries_since_prune = 0
            try:
                self.outbox.prune_delivered()
            except OutboxError as exc:
                _LOGGER.warning("%s: cannot prune the outbox: %s", self.label, exc)

    def _refused(self, event_id: str, reason: str) -> None:
        self.stats.events_refused += 1
        if self.outbox.record_refusal(event_id, reason):
            self.stats.events_set_aside += 1
            _LOGGER.error(
                "%s: event %s refused by the broker (%s); set aside in %s after "
                "repeated refusals: fix the ACL or the gateway id, then call "
                "Outbox.retry_refused()",
                self.label,
                event_id,
                reason,
                self.outbox.path,
            )
        else:
            _LOGGER.warning(
                "%s: event %s refused by the broker (%s); retried on the next "
                "connection",
                self.label,
                event_id,
                reason,
            )
