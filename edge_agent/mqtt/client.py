"""The gateway's MQTT client: status, durable events, commands, one link loop.

Threads: the agent calls :meth:`GatewayMqttClient.enqueue` and
:meth:`~GatewayMqttClient.update_status` from any thread; exactly one link
thread, started by :meth:`~GatewayMqttClient.start`, owns every broker
connection. It runs::

    connect (new paho client, TLS, CONNACK, subscribe)
      -> serve: publish status "online", send pending outbox rows in order
         (at most max_inflight unacknowledged), commit PUBACKs in batches,
         hand inbound messages to the handler, until the link drops
      -> wait a jittered, exponentially growing delay -> connect again

A lost link, a paho disconnect callback and :meth:`request_reconnect` only
mark the current connection as finished; none of them starts anything. So
any number of disconnect notifications, from any thread, ends in the single
loop that is already running. The loop never gives up; the last connect
error is kept in :attr:`~GatewayMqttClient.last_error` and returned by
:meth:`~GatewayMqttClient.wait_connected`.

The inbound handler runs on the link thread and must return quickly (queue
the work). Retained model announcements arrive again after each reconnect;
handle them idempotently.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .backoff import Backoff
from .config import MqttConfig
from .delivery import OutboxPublisher
from .dispatch import InboundDispatcher, InboundHandler
from .errors import BrokerConnectError, BrokerUnavailableError
from .events import GatewayEvent
from .outbox import Outbox
from .session import TICK_S, LinkSession, describe
from .stats import LinkStats
from .status import (
    REASON_CONNECTION_LOST,
    REASON_SHUTDOWN,
    STATE_OFFLINE,
    STATE_ONLINE,
    check_status_info,
    status_document,
)
from .tls import build_tls_context

__all__ = ["GatewayMqttClient"]

_LOGGER = logging.getLogger(__name__)

# Longest stop: time to get the "offline" status acknowledged and say
# goodbye; the outbox keeps whatever is still in flight.
STOP_TIMEOUT_S = 10.0
# How often wait_delivered looks at the outbox: quick enough for tests and
# shutdown, cheap (one indexed COUNT query).
POLL_S = 0.05


class GatewayMqttClient:
    """Connect one gateway to its broker and keep it connected.

    Args:
        config: validated on construction.
        outbox_path: the SQLite outbox file (created if missing).
        on_message: called with every valid command and announcement.
        rng: randomness of the reconnect jitter (tests pass a seeded one).

    Raises:
        MqttConfigError: ``config`` is invalid or its TLS files unreadable.
        OutboxError: the outbox cannot be opened.
    """

    def __init__(
        self,
        config: MqttConfig,
        outbox_path: str | Path,
        *,
        on_message: InboundHandler | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.config = config.validate()
        self.topics = config.topics()
        self.outbox = Outbox.open(outbox_path)
        self.stats = LinkStats()
        self._rng = rng
        self._who = f"gateway {config.gateway_id}"
        self._label = f"{self._who}: broker {config.broker}"
        if config.tls:
            # Fail at start-up, not in the link thread, on unreadable files.
            build_tls_context(config)
        self._lock = threading.Lock()
        self._status_info: dict[str, Any] = {}
        self._status_dirty = threading.Event()
        self._publisher = OutboxPublisher(self.outbox, self.stats, self._label)
        self._dispatcher = InboundDispatcher(
            self.topics, self.outbox.quarantine, self.stats, on_message, self._label
        )
        self._stopping = threading.Event()
        self._reconnect_requested = threading.Event()
        self._connected = threading.Event()
        self._last_error: BrokerConnectError | None = None
        self._thread: threading.Thread | None = None
        self._stop_timeout_s = STOP_TIMEOUT_S
        # Notified after every connect attempt, to wake wait_connected.
        self._attempts = threading.Condition()

    # ----- public API -----

    def start(self) -> None:
        """Start the link thread (once); returns at once."""
        with self._lock:
            if self._thread is not None:
                raise RuntimeError(f"{self._label}: client already started")
            self._thread = threading.Thread(
                target=self._run,
                name=f"mqtt-link-{self.config.gateway_id}",
                daemon=True,
            )
            self._thread.start()

    def stop(self, timeout_s: float = STOP_TIMEOUT_S) -> None:
        """Publish "offline", disconnect, join the link thread, close the outbox.

        Events still in flight stay pending in the outbox for the next start.
        """
        self._stop_timeout_s = timeout_s
        self._stopping.set()
        thread = self._thread
        if thread is not None:
            thread.join(timeout=timeout_s + TICK_S * 10)
            if thread.is_alive():
                _LOGGER.error(
                    "%s: link thread did not stop within %.1f s", self._label, timeout_s
                )
                return
        self.outbox.close()

    def __enter__(self) -> GatewayMqttClient:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def enqueue(self, event: GatewayEvent) -> bool:
        """Store ``event`` durably for the events topic; return False if known.

        Works with or without a broker connection; the event is on disk when
        this returns and is sent until the broker acknowledges it.

        Raises:
            MqttPayloadError: the event breaks ``gateway-event/1``.
            OutboxError: the outbox cannot commit.
        """
        added = self.outbox.enqueue(event, self.topics.events)
        self._publisher.wake()
        return added

    def update_status(self, info: Mapping[str, Any]) -> None:
        """Set the agent's part of the retained status (replaces the last one).

        Published at once when connected, else on the next connection.

        Raises:
            MqttPayloadError: an unknown key or a value of the wrong type.
        """
        checked = check_status_info(info, self.topics.status)
        with self._lock:
            self._status_info = checked
        self._status_dirty.set()

    def request_reconnect(self, reason: str) -> None:
        """Ask the link thread to drop the current connection and reconnect.

        Safe from any thread, any number of times: requests made while no
        connection is up are absorbed by the reconnect already under way.
        """
        with self._lock:
            self.stats.reconnect_requests += 1
        if not self._reconnect_requested.is_set():
            _LOGGER.info("%s: reconnect requested: %s", self._label, reason)
        self._reconnect_requested.set()

    @property
    def connected(self) -> bool:
        """Return True while a session with the broker is up."""
        return self._connected.is_set()

    @property
    def last_error(self) -> BrokerConnectError | None:
        """Return the error of the last failed connect (None once connected)."""
        return self._last_error

    def wait_connected(self, timeout_s: float, *, fail_fast: bool = False) -> None:
        """Block until connected.

        Args:
            timeout_s: longest wait.
            fail_fast: give up as soon as an attempt has failed instead of
                waiting for the loop's retries (a start-up check).

        Raises:
            BrokerConnectError: not connected; the last connect error
                (identity, refusal, unavailability) when one is known.
        """
        deadline = time.monotonic() + timeout_s
        while not self._connected.is_set():
            remaining_s = deadline - time.monotonic()
            if remaining_s <= 0 or (fail_fast and self._last_error is not None):
                break
            with self._attempts:
                self._attempts.wait(min(remaining_s, POLL_S * 4))
        if self._connected.is_set():
            return
        if self._last_error is not None:
            raise self._last_error
        raise BrokerUnavailableError(
            self.config.broker, f"not connected within {timeout_s:.1f} s"
        )

    def wait_delivered(self, timeout_s: float) -> bool:
        """Return True once no event is pending, False after ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.outbox.counts()["pending"] == 0:
                return True
            time.sleep(POLL_S)
        return self.outbox.counts()["pending"] == 0

    # ----- the link thread -----

    def _run(self) -> None:
        self.stats.link_threads_started += 1
        backoff = Backoff(
            self.config.backoff_min_s, self.config.backoff_max_s, rng=self._rng
        )
        while not self._stopping.is_set():
            self.stats.connect_attempts += 1
            attempt = backoff.attempt + 1
            try:
                session = self._open_session()
            except Exception as exc:
                self._connect_failed(exc, attempt, backoff)
                continue
            backoff.reset()
            self._last_error = None
            self._reconnect_requested.clear()
            self.stats.connections += 1
            self._connected.set()
            self._attempt_finished()
            _LOGGER.info("%s: connected", self._label)
            try:
                reason = self._serve(session)
            except Exception:
                _LOGGER.exception("%s: link thread failed; reconnecting", self._label)
                reason = "internal error"
            finally:
                self._connected.clear()
                session.close()
            if self._stopping.is_set():
                break
            self.stats.links_lost += 1
            delay_s = backoff.next_delay_s()
            _LOGGER.warning(
                "%s: link lost (%s); reconnecting in %.1f s",
                self._label,
                reason,
                delay_s,
            )
            self._stopping.wait(delay_s)
        _LOGGER.info("%s: link thread stopped", self._label)

    def _connect_failed(self, exc: Exception, attempt: int, backoff: Backoff) -> None:
        if isinstance(exc, BrokerConnectError):
            self._last_error = exc
        else:
            _LOGGER.exception("%s: unexpected error while connecting", self._label)
            self._last_error = BrokerUnavailableError(self.config.broker, describe(exc))
        self._attempt_finished()
        delay_s = backoff.next_delay_s()
        log = (
            _LOGGER.warning
            if isinstance(exc, BrokerUnavailableError)
            else _LOGGER.error
        )
        log(
            "%s: connect attempt %d failed: %s; next attempt in %.1f s",
            self._who,
            attempt,
            describe(exc),
            delay_s,
        )
        self._stopping.wait(delay_s)

    def _attempt_finished(self) -> None:
        with self._attempts:
            self._attempts.notify_all()

    def _status_payload(self, state: str, reason: str | None) -> str:
        with self._lock:
            info = dict(self._status_info)
        document = status_document(self.config.gateway_id, state, info, reason=reason)
        return json.dumps(document, separators=(",", ":"), sort_keys=True)

    def _open_session(self) -> LinkSession:
        session = LinkSession(
            self.config,
            will_payload=self._status_payload(STATE_OFFLINE, REASON_CONNECTION_LOST),
            on_message=self._dispatcher,
            label=self._label,
        )
        try:
            session.open()
        except BaseException:
            session.close()
            raise
        return session

    def _serve(self, session: LinkSession) -> str:
        """Run one connection until it drops, a reconnect is asked, or stop."""
        self._status_dirty.set()
        self._publisher.begin_connection()
        while True:
            if self._stopping.is_set():
                self._goodbye(session)
                return "stopped"
            if self._reconnect_requested.is_set():
                self._reconnect_requested.clear()
                session.drop()
                return "reconnect requested"
            if self._status_dirty.is_set():
                self._status_dirty.clear()
                if session.publish_status(self._status_payload(STATE_ONLINE, None)):
                    self.stats.status_published += 1
                else:
                    self._status_dirty.set()
            self._publisher.feed(session)
            session.tick()
            self._publisher.settle(session.take_acks())
            if not session.alive:
                return session.lost_reason or "connection closed"

    def _goodbye(self, session: LinkSession) -> None:
        """Publish "offline" (retained), wait for its PUBACK, disconnect."""
        deadline = time.monotonic() + self._stop_timeout_s
        answered = acknowledged = False
        if session.publish_status(self._status_payload(STATE_OFFLINE, REASON_SHUTDOWN)):
            while session.alive and time.monotonic() < deadline and not answered:
                session.tick()
                acks = session.take_acks()
                answered = acks.status_answered
                acknowledged = acks.status_acked
                self._publisher.settle(acks)
        if not acknowledged:
            _LOGGER.warning(
                "%s: offline status not acknowledged before shutdown; the broker "
                "publishes the last will instead",
                self._label,
            )
        session.goodbye(deadline)
        _LOGGER.info("%s: disconnected (shutdown)", self._label)
