"""The durable outbox of gateway events, and the inbound quarantine.

One SQLite file of its own (WAL, ``synchronous=FULL``, so every commit is
fsynced before it returns). Rows move::

    pending --PUBACK--> delivered
    pending --refused by the broker MAX_REFUSALS times--> refused (kept aside)

:meth:`Outbox.enqueue` commits before it returns, so an event survives a
crash or power cut from then on. The publisher sends ``pending`` rows in
``seq`` order and marks them ``delivered`` only when the broker's PUBACK
came back; a crash between send and mark sends the event again, which is
harmless because subscribers drop repeats by ``event_id``. Delivered rows
are kept (newest :data:`KEEP_DELIVERED_ROWS`) for audit, then pruned.

Messages that arrive on the gateway's subscriptions but cannot be used are
kept in the ``inbound_quarantine`` table with the reason, never dropped.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlite_utils

from .errors import OutboxError
from .events import GatewayEvent, check_event_document

__all__ = [
    "MAX_REFUSALS",
    "InboundQuarantine",
    "Outbox",
    "OutboxEntry",
    "QuarantinedMessage",
]

_LOGGER = logging.getLogger(__name__)

SCHEMA_VERSION = 1
# A writer waits this long for another connection's lock before failing:
# covers a checkpoint on slow flash without hiding a stuck peer.
BUSY_TIMEOUT_S = 10.0
# Refusals (PUBACK with a failure reason, e.g. not authorised) before an
# event is set aside: a few reconnects' worth, so a transient quota error
# passes but an ACL mistake does not make the gateway resend forever.
MAX_REFUSALS = 5
# Delivered rows kept for audit; about a year of a busy gateway's events at
# a few hundred bytes each.
KEEP_DELIVERED_ROWS = 5000

STATE_PENDING = "pending"
STATE_DELIVERED = "delivered"
STATE_REFUSED = "refused"

_DDL = (
    """
    CREATE TABLE IF NOT EXISTS outbox (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        event_id TEXT NOT NULL UNIQUE,
        topic TEXT NOT NULL,
        payload TEXT NOT NULL,
        state TEXT NOT NULL,
        refusals INTEGER NOT NULL DEFAULT 0,
        last_error TEXT,
        created_at TEXT NOT NULL,
        delivered_at TEXT
    )
    """,
    "CREATE INDEX IF NOT EXISTS outbox_state_seq ON outbox (state, seq)",
    """
    CREATE TABLE IF NOT EXISTS inbound_quarantine (
        entry_id INTEGER PRIMARY KEY AUTOINCREMENT,
        topic TEXT NOT NULL,
        payload BLOB NOT NULL,
        reason TEXT NOT NULL,
        received_at TEXT NOT NULL
    )
    """,
)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


@dataclass(frozen=True)
class OutboxEntry:
    """One event row of the outbox."""

    seq: int
    event_id: str
    topic: str
    payload: str
    state: str
    refusals: int
    last_error: str | None
    created_at: str
    delivered_at: str | None


@dataclass(frozen=True)
class QuarantinedMessage:
    """One inbound message kept aside, with the reason."""

    entry_id: int
    topic: str
    payload: bytes
    reason: str
    received_at: str


class _Database:
    """The shared connection and the lock that serialises its use."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lock = threading.RLock()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(
                str(path), timeout=BUSY_TIMEOUT_S, check_same_thread=False
            )
            self.db = sqlite_utils.Database(conn)
            self.db.enable_wal()
            self.db.execute("PRAGMA synchronous=FULL")
            version = int(self.db.execute("PRAGMA user_version").fetchone()[0])
            if version > SCHEMA_VERSION:
                conn.close()
                raise OutboxError(
                    f"outbox {path}: schema version {version} is newer than this "
                    f"agent understands ({SCHEMA_VERSION}); upgrade the agent"
                )
            with conn:
                for statement in _DDL:
                    conn.execute(statement)
                conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        except (sqlite3.Error, OSError) as exc:
            raise OutboxError(
                f"outbox {path}: cannot open ({exc}); move the file aside to "
                "start a fresh outbox (undelivered events in it are then not sent)"
            ) from exc

    @contextmanager
    def transaction(self, what: str) -> Iterator[sqlite3.Connection]:
        """Run a block in one committed transaction; map SQLite errors."""
        with self.lock:
            conn = self.db.conn
            try:
                with conn:
                    yield conn
            except sqlite3.Error as exc:
                raise OutboxError(f"outbox {self.path}: cannot {what}: {exc}") from exc

    def query(self, sql: str, params: Iterable[Any] = ()) -> list[Any]:
        """Return every row of a read query."""
        with self.lock:
            try:
                return list(self.db.execute(sql, list(params)).fetchall())
            except sqlite3.Error as exc:
                raise OutboxError(f"outbox {self.path}: query failed: {exc}") from exc

    def close(self) -> None:
        """Close the connection."""
        with self.lock:
            self.db.conn.close()


class Outbox:
    """Durable queue of events waiting for the broker's PUBACK.

    Thread-safe: the agent enqueues from its threads while the MQTT link
    thread reads and marks rows.
    """

    def __init__(self, database: _Database) -> None:
        self._database = database
        self.path = database.path
        self.quarantine = InboundQuarantine(database)

    @classmethod
    def open(cls, path: str | Path) -> Outbox:
        """Open (or create) the outbox file at ``path``.

        Raises:
            OutboxError: not a database, unwritable, or a newer schema.
        """
        return cls(_Database(Path(path)))

    def close(self) -> None:
        """Close the database; committed events stay for the next open."""
        self._database.close()

    def __enter__(self) -> Outbox:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def enqueue(self, event: GatewayEvent, topic: str) -> bool:
        """Store ``event`` for sending on ``topic``; durable when this returns.

        Returns False when an event with this id is already stored (the
        first copy is kept and sent).

        Raises:
            MqttPayloadError: the event breaks ``gateway-event/1``.
            OutboxError: the row cannot be committed.
        """
        check_event_document(event.to_document(), topic)
        with self._database.transaction(f"enqueue event {event.event_id}") as conn:
            cursor = conn.execute(
                "INSERT OR IGNORE INTO outbox (event_id, topic, payload, state, "
                "created_at) VALUES (?, ?, ?, ?, ?)",
                [event.event_id, topic, event.to_payload(), STATE_PENDING, _now()],
            )
            added = cursor.rowcount == 1
        _LOGGER.debug(
            "outbox %s: event %s %s",
            self.path,
            event.event_id,
            "enqueued" if added else "already stored",
        )
        return added

    def pending_after(self, seq: int, limit: int) -> list[OutboxEntry]:
        """Return up to ``limit`` pending events with a sequence above ``seq``."""
        rows = self._database.query(
            "SELECT * FROM outbox WHERE state = ? AND seq > ? ORDER BY seq LIMIT ?",
            [STATE_PENDING, seq, limit],
        )
        return [OutboxEntry(*row) for row in rows]

    def mark_delivered(self, event_ids: Iterable[str]) -> int:
        """Record PUBACKs for ``event_ids`` in one commit; return rows changed."""
        ids = list(event_ids)
        if not ids:
            return 0
        now = _now()
        with self._database.transaction("mark events delivered") as conn:
            changed = 0
            for event_id in ids:
                cursor = conn.execute(
                    "UPDATE outbox SET state = ?, delivered_at = ?, last_error = NULL "
                    "WHERE event_id = ? AND state != ?",
                    [STATE_DELIVERED, now, event_id, STATE_DELIVERED],
                )
                changed += cursor.rowcount
        return changed

    def record_refusal(self, event_id: str, reason: str) -> bool:
        """Count a broker refusal; return True when the event was set aside."""
        with self._database.transaction(f"record refusal of {event_id}") as conn:
            conn.execute(
                "UPDATE outbox SET refusals = refusals + 1, last_error = ?, "
                "state = CASE WHEN refusals + 1 >= ? THEN ? ELSE state END "
                "WHERE event_id = ? AND state = ?",
                [reason, MAX_REFUSALS, STATE_REFUSED, event_id, STATE_PENDING],
            )
            row = conn.execute(
                "SELECT state FROM outbox WHERE event_id = ?", [event_id]
            ).fetchone()
        return row is not None and row[0] == STATE_REFUSED

    def retry_refused(self) -> int:
        """Put every refused event back to pending (after the ACL was fixed)."""
        with self._database.transaction("retry refused events") as conn:
            cursor = conn.execute(
                "UPDATE outbox SET state = ?, refusals = 0 WHERE state = ?",
                [STATE_PENDING, STATE_REFUSED],
            )
            return int(cursor.rowcount)

    def prune_delivered(self, keep_rows: int = KEEP_DELIVERED_ROWS) -> int:
        """Delete delivered rows beyond the newest ``keep_rows``; return count."""
        with self._database.transaction("prune delivered events") as conn:
            cursor = conn.execute(
                "DELETE FROM outbox WHERE state = ? AND seq NOT IN ("
                "SELECT seq FROM outbox WHERE state = ? ORDER BY seq DESC LIMIT ?)",
                [STATE_DELIVERED, STATE_DELIVERED, keep_rows],
            )
            return int(cursor.rowcount)

    def counts(self) -> dict[str, int]:
        """Return how many events are in each state (every state present)."""
        counts = dict.fromkeys((STATE_PENDING, STATE_DELIVERED, STATE_REFUSED), 0)
        for state, count in self._database.query(
            "SELECT state, COUNT(*) FROM outbox GROUP BY state"
        ):
            counts[str(state)] = int(count)
        return counts

    def entries(self, state: str | None = None) -> list[OutboxEntry]:
        """Return the rows in ``state`` (all when None), oldest first."""
        if state is None:
            rows = self._database.query("SELECT * FROM outbox ORDER BY seq")
        else:
            rows = self._database.query(
                "SELECT * FROM outbox WHERE state = ? ORDER BY seq", [state]
            )
        return [OutboxEntry(*row) for row in rows]


class InboundQuarantine:
    """Inbound messages that could not be used, kept with the reason."""

    def __init__(self, database: _Database) -> None:
        self._database = database

    def add(self, topic: str, payload: bytes, reason: str) -> int:
        """Keep ``payload`` aside with ``reason``; return the entry id."""
        with self._database.transaction(f"quarantine a message from {topic}") as conn:
            cursor = conn.execute(
                "INSERT INTO inbound_quarantine (topic, payload, reason, received_at) "
                "VALUES (?, ?, ?, ?)",
                [topic, bytes(payload), reason, _now()],
            )
            return int(cursor.lastrowid or 0)

    def entries(self) -> list[QuarantinedMessage]:
        """Return every quarantined message, oldest first."""
        rows = self._database.query(
            "SELECT entry_id, topic, payload, reason, received_at "
            "FROM inbound_quarantine ORDER BY entry_id"
        )
        return [
            QuarantinedMessage(int(row[0]), row[1], bytes(row[2]), row[3], row[4])
            for row in rows
        ]

    def count(self) -> int:
        """Return how many messages are kept aside."""
        return int(
            self._database.query("SELECT COUNT(*) FROM inbound_quarantine")[0][0]
        )
