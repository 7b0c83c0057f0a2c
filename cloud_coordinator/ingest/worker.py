"""The ingest worker: gateway events from a shared subscription into the catalog.

Any number of workers subscribe to ``$share/{group}/gateways/+/events``;
the broker gives each event to one of them. A worker keeps a persistent
MQTT session under a stable client id and acknowledges an event only after
the catalog committed it (manual ack, in arrival order), so an event whose
worker died is delivered again, to it after a restart or to another one,
and the catalog's event log turns the repeat into a no-op.

Threads: paho's network thread queues messages; ``threads`` processing
threads catalogue them (verification hashes big objects, which releases
the GIL); a relay thread publishes crash notifications on ``cloud/events``;
a reconciliation thread lists the buckets every ``reconcile_interval_s``.

Failures: bad input is quarantined in the catalog, counted and
acknowledged; a store or catalog outage retries the same message with
backoff (``attempt n``) and holds its acknowledgement until it passes.
"""

from __future__ import annotations

import datetime as dt
import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from edge_agent.upload import BucketNames, ObjectStore, StorageError

from ..broker import (
    DEFAULT_INGEST_GROUP,
    CloudMqttClient,
    InboundMessage,
    events_subscription,
)
from ..catalog import Catalog, CatalogError, InvalidRecord
from ..catalog.ingestlog import QuarantineEntry
from ..catalog.sqlbase import utc_now
from ..config import BrokerConfig
from ..notify import NotificationType
from .acks import AckSequencer
from .errors import RejectedInput
from .processor import EventProcessor
from .reconcile import reconcile
from .relay import NotificationRelay
from .stats import IngestStats
from .verify import VerifyMode

__all__ = ["IngestWorker", "WorkerSettings"]

_LOGGER = logging.getLogger(__name__)

# Backoff while the store or catalog is down: quick first retry, then at
# most a minute between attempts (the message waits, unacknowledged).
RETRY_MIN_S = 0.5
RETRY_MAX_S = 60.0
# How often idle processing threads look at the stop flag.
POLL_S = 0.5


@dataclass(frozen=True)
class WorkerSettings:
    """Tunables of one worker (the ``[ingest]`` section)."""

    group: str = DEFAULT_INGEST_GROUP
    threads: int = 4
    verify: VerifyMode = VerifyMode.HASH
    session_expiry_s: int = 3600
    reconcile_interval_s: float = 3600.0
    relay_interval_s: float = 1.0
    relay_analytics: bool = True
    temp_dir: Path | None = None


class IngestWorker:
    """One ingest process's consumer; see the module docstring."""

    def __init__(
        self,
        catalog: Catalog,
        store: ObjectStore,
        broker: BrokerConfig,
        *,
        client_id: str,
        settings: WorkerSettings | None = None,
        buckets: BucketNames | None = None,
        base_dir: Path | None = None,
        clock: Callable[[], dt.datetime] = utc_now,
    ) -> None:
        """Prepare a worker; :meth:`start` connects and starts its threads.

        ``client_id`` must be stable across restarts of this worker (its
        persistent session holds the events it has not acknowledged) and
        unique among the running workers.
        """
        self.settings = settings or WorkerSettings()
        self.broker = broker
        self.catalog = catalog
        self.store = store
        self.buckets = buckets or BucketNames()
        self.clock = clock
        self.stats = IngestStats()
        self.processor = EventProcessor(
            catalog,
            store,
            broker=broker,
            buckets=self.buckets,
            verify=self.settings.verify,
            stats=self.stats,
            temp_dir=self.settings.temp_dir,
            clock=clock,
        )
        self._inbox: queue.Queue[tuple[int, InboundMessage]] = queue.Queue()
        self._stop = threading.Event()
        self.client = CloudMqttClient(
            broker,
            base_dir=base_dir,
            client_id=client_id,
            handler=self._arrived,
            subscriptions=[(events_subscription(broker, self.settings.group), 1)],
            manual_ack=True,
            session_expiry_s=self.settings.session_expiry_s,
        )
        self._acks = AckSequencer(self.client.ack)
        types: tuple[NotificationType, ...] = (NotificationType.CRASH_DETECTED,)
        if self.settings.relay_analytics:
            types += (NotificationType.ANALYTICS_READY,)
        self.relay = NotificationRelay(
            catalog,
            self.client,
            broker.cloud_events_topic,
            types=types,
            stats=self.stats,
            clock=clock,
        )
        self._threads: list[threading.Thread] = []

    # -- network thread ---------------------------------------------------------

    def _arrived(self, message: InboundMessage) -> None:
        ticket = self._acks.arrived(message)
        self._inbox.put((ticket, message))

    # -- processing threads -----------------------------------------------------

    def _quarantine(self, message: InboundMessage, reason: str) -> None:
        self.catalog.quarantine(
            QuarantineEntry(
                source=message.topic, reason=reason, payload=message.payload
            ),
            self.clock(),
        )
        self.stats.add(quarantined=1)
        _LOGGER.error("ingest: message on %s kept aside: %s", message.topic, reason)

    def _process(self, message: InboundMessage) -> bool:
        """Catalogue or quarantine one message; return False if stopped first."""
        attempt = 0
        while True:
            attempt += 1
            try:
                try:
                    self.processor.handle(message.topic, message.payload)
                except (RejectedInput, InvalidRecord) as exc:
                    self._quarantine(message, str(exc))
                return True
            except (StorageError, CatalogError) as exc:
                delay_s = min(RETRY_MAX_S, RETRY_MIN_S * 2 ** min(attempt - 1, 10))
                self.stats.add(retries=1)
                _LOGGER.warning(
                    "ingest: message on %s, attempt %d failed: %s; retrying in "
                    "%.1f s (not acknowledged)",
                    message.topic,
                    attempt,
                    exc,
                    delay_s,
                )
                if self._stop.wait(delay_s):
                    return False
            except Exception as exc:
                # A bug must not stop ingest: keep the message for a look.
                _LOGGER.exception("ingest: unexpected error on %s", message.topic)
                try:
                    self._quarantine(message, f"unexpected error: {exc!r}")
                except (StorageError, CatalogError):
                    return False
                return True

    def _run_processing(self) -> None:
        while not self._stop.is_set():
            try:
                ticket, message = self._inbox.get(timeout=POLL_S)
            except queue.Empty:
                continue
            if self._process(message):
                self._acks.finished(ticket)
            else:
                self._acks.forget(ticket)

    # -- reconciliation -----------------------------------------------------------

    def reconcile_once(self) -> None:
        """Run one reconciliation pass (errors are logged; the next pass retries)."""
        try:
            reconcile(
                self.catalog,
                self.store,
                buckets=self.buckets,
                verify=self.settings.verify,
                stats=self.stats,
                temp_dir=self.settings.temp_dir,
                clock=self.clock,
            )
        except (StorageError, CatalogError) as exc:
            _LOGGER.warning("reconcile: pass stopped: %s; next pass retries", exc)

    def _run_reconcile(self) -> None:
        interval_s = self.settings.reconcile_interval_s
        while not self._stop.wait(interval_s):
            self.reconcile_once()

    # -- lifecycle ------------------------------------------------------------------

    def start(self) -> None:
        """Connect to the broker and start every thread.

        Raises:
            BrokerUnavailable: the broker cannot be reached.
        """
        self.client.connect()
        targets: list[tuple[str, Callable[[], None]]] = [
            (f"ingest-{index}", self._run_processing)
            for index in range(self.settings.threads)
        ]
        if self.settings.relay_interval_s > 0:
            targets.append(
                (
                    "ingest-relay",
                    lambda: self.relay.run(self._stop, self.settings.relay_interval_s),
                )
            )
        if self.settings.reconcile_interval_s > 0:
            targets.append(("ingest-reconcile", self._run_reconcile))
        for name, target in targets:
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)
        _LOGGER.info(
            "ingest %s: consuming %s with %d threads (verify %s)",
            self.client.client_id,
            events_subscription(self.broker, self.settings.group),
            self.settings.threads,
            self.settings.verify.value,
        )

    def stop(self, timeout_s: float = 30.0) -> None:
        """Finish the messages in hand, acknowledge them, and disconnect."""
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout_s)
        self.client.close()
        _LOGGER.info(
            "ingest %s: stopped; %s", self.client.client_id, self.stats.snapshot()
        )

    def wait(self, stop: threading.Event, report_interval_s: float = 60.0) -> None:
        """Run until ``stop`` is set, logging the counters now and then."""
        while not stop.wait(report_interval_s):
            _LOGGER.info(
                "ingest %s: %s (%d awaiting ack)",
                self.client.client_id,
                self.stats.snapshot(),
                self._acks.waiting,
            )
