"""The live device-data worker: MQTT samples in, window objects out.

The worker subscribes to ``$share/{group}/{devices}/+/data`` with a
persistent session and manual acknowledgement. Each message is checked as
it is taken from the queue (:func:`~.samples.parse_sample`); valid samples
are grouped per device and time window, refused ones wait to be kept aside.
A flush, when ``max_batch_messages`` are pending, the oldest has waited
``flush_interval_s`` or nothing arrived for ``idle_flush_s``, commits every
window (:class:`~.writer.WindowWriter`),
keeps the refused messages in the quarantine bucket, and only then
acknowledges the messages, in the order they came. A worker killed before
that gets the same messages again from its session when it restarts under
the same id; merging drops what was already committed, so nothing is lost
or written twice. A failed flush acknowledges nothing and is retried.

Known limit: after the link to the broker drops, messages received before
it are still committed and acknowledged by their packet id; the broker
resends them (same ids) and the resent copies are dropped as repeats, and
a packet id is acknowledged once per flush. A resent copy that arrives only
after its original was acknowledged is acknowledged again, which could, in
a narrow window, acknowledge a new message that reused the id before it is
committed; a crash in that window would lose that message. Telling
connections apart (a connection number on each inbound message) would
close it.
"""

from __future__ import annotations

import datetime as dt
import logging
import queue
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from edge_agent.upload import BucketNames, ObjectStore

from ..broker import CloudMqttClient, InboundMessage
from ..catalog import Catalog, CatalogError, Device
from .errors import FlushFailed, MalformedSample
from .quarantine import Quarantine
from .samples import DeviceSample, SampleLimits, parse_sample
from .writer import WindowKey, WindowWriter

__all__ = ["DeviceDataWorker", "DeviceWorkerSettings", "WorkerStats"]

_LOGGER = logging.getLogger(__name__)

# How long the loop waits for a message before it checks the flush timer
# and the stop flag again.
POLL_S = 0.2
# After a failed flush, wait before retrying so a store outage is not
# hammered; messages stay unacknowledged meanwhile.
RETRY_BACKOFF_S = 5.0


@dataclass(frozen=True)
class DeviceWorkerSettings:
    """How one worker batches; see :class:`~cloud_coordinator.config`."""

    worker_id: str
    devices_prefix: str = "devices"
    share_group: str = "devices"
    window_s: float = 300.0
    flush_interval_s: float = 5.0
    max_batch_messages: int = 900
    # A batch also flushes once nothing new arrived for this long: the
    # broker stops sending when the session's in-flight limit is full of
    # unacknowledged messages (20 with Mosquitto's default, 1000 in the
    # shipped config), and waiting out flush_interval_s would only add delay.
    idle_flush_s: float = 1.0
    session_expiry_s: int = 86400
    quarantine_bucket: str = "quarantine"
    limits: SampleLimits = field(default_factory=SampleLimits)

    @property
    def subscription(self) -> str:
        """Return the shared subscription to every device's data topic."""
        return f"$share/{self.share_group}/{self.devices_prefix}/+/data"


@dataclass
class WorkerStats:
    """Counters of one worker since it started (for logs and tests)."""

    received: int = 0
    samples_committed: int = 0
    repeats: int = 0
    malformed: Counter[str] = field(default_factory=Counter)
    windows_written: int = 0
    flushes: int = 0
    failed_flushes: int = 0
    acknowledged: int = 0

    @property
    def malformed_total(self) -> int:
        """Return how many messages were kept aside."""
        return sum(self.malformed.values())


@dataclass
class _Pending:
    message: InboundMessage
    received_at: dt.datetime
    sample: DeviceSample | None = None
    error: MalformedSample | None = None


ClientFactory = Callable[[Callable[[InboundMessage], None]], CloudMqttClient]


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class DeviceDataWorker:
    """One worker of the shared device-data subscription."""

    def __init__(
        self,
        settings: DeviceWorkerSettings,
        store: ObjectStore,
        catalog: Catalog,
        buckets: BucketNames,
        client_factory: ClientFactory,
        *,
        clock: Callable[[], dt.datetime] = _utc_now,
    ) -> None:
        """Prepare the worker; :meth:`run` connects and consumes.

        ``client_factory(handler)`` returns a manual-ack client with a
        persistent session subscribed to ``settings.subscription``.
        """
        self.settings = settings
        self.stats = WorkerStats()
        self._store = store
        self._catalog = catalog
        self._clock = clock
        self._writer = WindowWriter(
            store,
            catalog,
            buckets,
            settings.worker_id,
            quarantine_bucket=settings.quarantine_bucket,
        )
        self._quarantine = Quarantine(store, settings.quarantine_bucket)
        self._client_factory = client_factory
        self._inbox: queue.Queue[tuple[InboundMessage, dt.datetime]] = queue.Queue()
        self._pending: list[_Pending] = []
        self._oldest_s: float | None = None
        self._newest_s = 0.0
        self._retry_after_s = 0.0
        self._window_us = max(1, round(settings.window_s * 1e6))
        self._buckets = buckets

    def _on_message(self, message: InboundMessage) -> None:
        # paho's network thread: only hand the message over.
        self._inbox.put((message, self._clock()))

    def run(self, stop: threading.Event) -> WorkerStats:
        """Consume until ``stop`` is set, then flush and disconnect.

        Raises:
            BrokerUnavailable: the broker cannot be reached at start.
            StorageError: the store refuses to create the buckets.
        """
        self._store.ensure_bucket(self._buckets.raw)
        self._store.ensure_bucket(self.settings.quarantine_bucket)
        client = self._client_factory(self._on_message)
        client.connect()
        _LOGGER.info(
            "devices %s: consuming %s (windows of %.0f s, flush every %.1f s or "
            "%d messages)",
            self.settings.worker_id,
            self.settings.subscription,
            self.settings.window_s,
            self.settings.flush_interval_s,
            self.settings.max_batch_messages,
        )
        try:
            while not stop.is_set():
                self._take(POLL_S)
                if self._due():
                    self.flush(client)
            while self._take(0.0):
                pass
            if self._pending:
                self.flush(client)
        finally:
            client.close()
        self._log_totals()
        return self.stats

    def _take(self, timeout_s: float) -> bool:
        try:
            if timeout_s > 0:
                message, received_at = self._inbox.get(timeout=timeout_s)
            else:
                message, received_at = self._inbox.get_nowait()
        except queue.Empty:
            return False
        self._add(message, received_at)
        return True

    def _add(self, message: InboundMessage, received_at: dt.datetime) -> None:
        self.stats.received += 1
        pending = _Pending(message, received_at)
        try:
            pending.sample = parse_sample(
                message.topic,
                message.payload,
                now=received_at,
                limits=self.settings.limits,
                prefix=self.settings.devices_prefix,
            )
        except MalformedSample as exc:
            pending.error = exc
        now_s = time.monotonic()
        if not self._pending:
            self._oldest_s = now_s
        self._newest_s = now_s
        self._pending.append(pending)

    def _due(self) -> bool:
        if not self._pending or time.monotonic() < self._retry_after_s:
            return False
        if len(self._pending) >= self.settings.max_batch_messages:
            return True
        assert self._oldest_s is not None
        now_s = time.monotonic()
        return (
            now_s - self._oldest_s >= self.settings.flush_interval_s
            or now_s - self._newest_s >= self.settings.idle_flush_s
        )

    def flush(self, client: CloudMqttClient) -> bool:
        """Commit what is pending, keep refused messages aside, then ack.

        Returns False (nothing acknowledged, retried later) when the store or
        catalog failed.
        """
        batch = self._pending
        self.stats.flushes += 1
        try:
            refused = self._commit(batch)
            for item, error in refused:
                self._quarantine.keep(
                    item.message.topic,
                    item.message.payload,
                    error.reason,
                    str(error),
                    item.received_at,
                )
        except (FlushFailed, CatalogError) as exc:
            self.stats.failed_flushes += 1
            self._retry_after_s = time.monotonic() + RETRY_BACKOFF_S
            _LOGGER.error(
                "devices %s: flush of %d messages failed, retrying in %.0f s "
                "(nothing acknowledged): %s",
                self.settings.worker_id,
                len(batch),
                RETRY_BACKOFF_S,
                exc,
            )
            return False

        for _item, error in refused:
            self.stats.malformed[error.reason] += 1
            _LOGGER.warning(
                "devices %s: kept aside (%s): %s",
                self.settings.worker_id,
                error.reason,
                error,
            )
        acked: set[int] = set()
        for item in batch:
            if item.message.mid in acked:
                continue
            acked.add(item.message.mid)
            client.ack(item.message)
        self.stats.acknowledged += len(batch)
        self._pending = []
        self._oldest_s = None
        return True

    def _commit(self, batch: list[_Pending]) -> list[tuple[_Pending, MalformedSample]]:
        """Commit the valid samples of ``batch``; return what to keep aside."""
        refused = [(item, item.error) for item in batch if item.error is not None]
        windows: dict[WindowKey, list[_Pending]] = {}
        for item in batch:
            if item.sample is not None:
                start = item.sample.t_us - item.sample.t_us % self._window_us
                windows.setdefault(WindowKey(item.sample.device_id, start), []).append(
                    item
                )

        devices: dict[str, Device | None] = {}
        for window in sorted(windows):
            items = windows[window]
            if window.device_id not in devices:
                devices[window.device_id] = self._catalog.get_device(window.device_id)
            device = devices[window.device_id]
            if device is None:
                refused += [
                    (
                        item,
                        MalformedSample(
                            "unknown_device",
                            f"{item.message.topic}: device {window.device_id!r} is "
                            "not registered (cloud-coordinator devices register)",
                        ),
                    )
                    for item in items
                ]
                continue
            samples = [item.sample for item in items if item.sample is not None]
            result = self._writer.commit(window, device, samples)
            self.stats.samples_committed += result.added
            self.stats.repeats += result.repeats
            if result.outcome is not None:
                self.stats.windows_written += 1
            conflicting = {id(sample) for sample in result.conflicts}
            refused += [
                (
                    item,
                    MalformedSample(
                        "conflicting_sample",
                        f"{item.message.topic}: another sample with the same time "
                        f"is already in {result.key}",
                    ),
                )
                for item in items
                if id(item.sample) in conflicting
            ]
        return refused

    def _log_totals(self) -> None:
        stats = self.stats
        _LOGGER.info(
            "devices %s: stopped; %d messages, %d samples committed, %d repeats "
            "dropped, %d kept aside %s, %d window writes in %d flushes (%d failed)",
            self.settings.worker_id,
            stats.received,
            stats.samples_committed,
            stats.repeats,
            stats.malformed_total,
            dict(stats.malformed),
            stats.windows_written,
            stats.flushes,
            stats.failed_flushes,
        )
