"""Prometheus metrics of the agent, served on 127.0.0.1 only.

``[metrics] port`` switches the endpoint on (0 leaves it off). The server is
prometheus_client's WSGI server in a daemon thread, bound to the loopback
address: a node exporter or an SSH tunnel collects from there; nothing
listens on the gateway's network interfaces.

Each agent owns a :class:`prometheus_client.CollectorRegistry`, so several
agents (tests) in one process do not share counters. Counters count since
the process started; gauges are refreshed after every cycle.

Metrics (counters end in ``_total``):

- ``edge_agent_buffer_logs{state}``: logs in the custody buffer by state
- ``edge_agent_buffer_used_bytes``, ``edge_agent_buffer_budget_bytes``: disk
  use and budget of the buffer (no budget: the budget gauge stays absent)
- ``edge_agent_quarantine_items``: items kept aside in quarantine
- ``edge_agent_pulled_bytes_total``: bytes received from suits
- ``edge_agent_uploaded_bytes_total``: bytes of outputs committed to the store
- ``edge_agent_pull_resumes_total``: pulls resumed from a durable offset
- ``edge_agent_retries_total{kind}``: ``ble_reconnect`` (inside a pull),
  ``dock`` (a failed dock pass), ``upload`` (deferred on a store failure)
- ``edge_agent_quarantined_total``: inputs rejected into quarantine
- ``edge_agent_logs_total{step}``: logs pulled, processed, uploaded, released
- ``edge_agent_processing_seconds``: processing time per log (histogram)
- ``edge_agent_cycles_total``: cycles run
- ``edge_agent_work_held_back{work}``: 1 while a gate holds pull or upload
- ``edge_agent_external_power``, ``edge_agent_uplink_up``: gating conditions
- ``edge_agent_last_sync_timestamp_seconds``: last committed upload
- ``edge_agent_model_info{name,version,sha256}``: the crash model in use
- ``process_*``: the agent process (memory, CPU, open files)
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING
from wsgiref.simple_server import WSGIServer

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    ProcessCollector,
    start_http_server,
)

from edge_agent.custody import CustodyBuffer, LogState

if TYPE_CHECKING:
    from .agent import CycleReport

__all__ = ["METRICS_ADDRESS", "AgentMetrics"]

_LOGGER = logging.getLogger(__name__)

# Loopback only: metrics reveal rider activity and must not leave the box.
METRICS_ADDRESS = "127.0.0.1"
# Processing time buckets in seconds: a short ride takes about a second, a
# 250 MB professional log minutes on a 2-core gateway.
PROCESSING_BUCKETS_S = (0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800)
# The kinds of work a gate can hold back (label values of work_held_back).
GATED_WORK = ("pull", "upload")


class AgentMetrics:
    """The agent's metrics in their own registry, optionally served over HTTP."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        """Create the metrics in ``registry`` (a new one when None)."""
        self.registry = registry or CollectorRegistry()
        reg = self.registry
        ProcessCollector(registry=reg)
        self.buffer_logs = Gauge(
            "edge_agent_buffer_logs",
            "Logs in the custody buffer",
            ["state"],
            registry=reg,
        )
        self.buffer_used_bytes = Gauge(
            "edge_agent_buffer_used_bytes", "Disk used by the buffer", registry=reg
        )
        self.buffer_budget_bytes = Gauge(
            "edge_agent_buffer_budget_bytes", "Disk budget of the buffer", registry=reg
        )
        self.quarantine_items = Gauge(
            "edge_agent_quarantine_items", "Items kept in quarantine", registry=reg
        )
        self.pulled_bytes = Counter(
            "edge_agent_pulled_bytes", "Bytes received from suits", registry=reg
        )
        self.uploaded_bytes = Counter(
            "edge_agent_uploaded_bytes", "Output bytes committed", registry=reg
        )
        self.pull_resumes = Counter(
            "edge_agent_pull_resumes",
            "Pulls resumed from a durable offset",
            registry=reg,
        )
        self.retries = Counter(
            "edge_agent_retries", "Work retried later", ["kind"], registry=reg
        )
        self.quarantined = Counter(
            "edge_agent_quarantined", "Inputs rejected into quarantine", registry=reg
        )
        self.logs = Counter(
            "edge_agent_logs", "Logs through each step", ["step"], registry=reg
        )
        self.processing_seconds = Histogram(
            "edge_agent_processing_seconds",
            "Processing time per log",
            buckets=PROCESSING_BUCKETS_S,
            registry=reg,
        )
        self.cycles = Counter("edge_agent_cycles", "Cycles run", registry=reg)
        self.held_back = Gauge(
            "edge_agent_work_held_back",
            "1 while a gate holds work",
            ["work"],
            registry=reg,
        )
        self.external_power = Gauge(
            "edge_agent_external_power", "1 on external power", registry=reg
        )
        self.uplink_up = Gauge(
            "edge_agent_uplink_up", "1 while the uplink works", registry=reg
        )
        self.last_sync = Gauge(
            "edge_agent_last_sync_timestamp_seconds",
            "Unix time of the last committed upload",
            registry=reg,
        )
        self.model = Info("edge_agent_model", "Crash model in use", registry=reg)
        self._server: WSGIServer | None = None
        self._thread: threading.Thread | None = None

    def serve(self, port: int) -> int:
        """Serve ``/metrics`` on 127.0.0.1:``port`` (0: any free port); return it.

        Raises:
            OSError: the port cannot be bound.
        """
        server, thread = start_http_server(
            port, addr=METRICS_ADDRESS, registry=self.registry
        )
        self._server, self._thread = server, thread
        bound = int(server.server_port)
        _LOGGER.info("metrics on http://%s:%d/metrics", METRICS_ADDRESS, bound)
        return bound

    @property
    def address(self) -> tuple[str, int] | None:
        """Return the address served on, None when not serving."""
        if self._server is None:
            return None
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    def close(self) -> None:
        """Stop serving (no-op when not serving)."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5.0)
            self._thread = None

    def set_model(self, block: Mapping[str, str] | None) -> None:
        """Record the crash model in use (name, version, sha256)."""
        if block is not None:
            self.model.info({key: str(value) for key, value in block.items()})

    def record_cycle(self, report: CycleReport, buffer: CustodyBuffer) -> None:
        """Count what a cycle did and refresh the gauges from ``buffer``."""
        dock, steps = report.dock, report.steps
        self.cycles.inc()
        self.pulled_bytes.inc(dock.bytes_pulled)
        self.uploaded_bytes.inc(report.bytes_uploaded)
        self.pull_resumes.inc(len(dock.resumed))
        self.retries.labels(kind="ble_reconnect").inc(dock.reconnects)
        self.retries.labels(kind="dock").inc(len(dock.errors))
        self.retries.labels(kind="upload").inc(report.uploads_deferred)
        self.quarantined.inc(len(report.quarantined))
        for step, count in (
            ("pulled", len(dock.pulled)),
            ("processed", len(steps.processed)),
            ("uploaded", len(steps.uploaded)),
            ("released", len(dock.released) + len(steps.released)),
            ("purged", len(steps.purged)),
        ):
            self.logs.labels(step=step).inc(count)
        for result in steps.results.values():
            self.processing_seconds.observe(sum(result.stage_seconds.values()))
        if report.conditions is not None:
            self.external_power.set(int(report.conditions.power.external))
            self.uplink_up.set(int(report.conditions.uplink.up))
        for work in GATED_WORK:
            self.held_back.labels(work=work).set(int(work in report.held_back))
        self.record_buffer(buffer)

    def record_buffer(self, buffer: CustodyBuffer) -> None:
        """Refresh the buffer gauges: logs by state, disk, quarantine, last sync."""
        counts = buffer.counts_by_state()
        for state in LogState:
            self.buffer_logs.labels(state=state.value).set(counts.get(state, 0))
        space = buffer.space_status() if hasattr(buffer, "space_status") else None
        if space is None:
            self.buffer_used_bytes.set(buffer.disk_usage_bytes())
        else:
            self.buffer_used_bytes.set(space.used_bytes)
            if space.budget_bytes is not None:
                self.buffer_budget_bytes.set(space.budget_bytes)
        self.quarantine_items.set(len(buffer.quarantine_entries()))
        last_sync = buffer.last_upload_time()
        if last_sync is not None:
            self.last_sync.set(last_sync.timestamp())
