"""The gateway agent: one cycle of custody work, and the service loop.

A cycle::

    scan -> per docked suit: release committed logs, pull new ones
            (only while the suit charges)
         -> process pulled logs
         -> upload processed logs (only on external power with a working
            uplink, see :mod:`.gating`)
         -> release what was just committed (same suits, no new scan)
         -> purge released logs per retention

Processing and uploading run in a worker thread so BLE callbacks and signal
handling stay responsive. Every step starts from the custody states, so a
cycle after a restart picks up wherever the last one stopped. Work a gate
holds back is named in the cycle's ``held_back`` (``{"pull": "suit not
charging", "upload": "gateway on battery"}``).

**Stopping.** When ``stop`` is set (SIGTERM) the cycle finishes the step it
is in and starts no other: a BLE pull is cancelled at once (it resumes from
its durable offset, see :mod:`.dock`), processing or uploading finishes the
pass over its logs, and everything else is left for the next run.

**Liveness.** Each step is entered on the :class:`~.systemd.Liveness`, and
progress inside steps beats it, which is what the watchdog pinger checks
(see :mod:`.systemd` for the design). For tests only, the environment
variable ``EDGE_AGENT_TEST_HANG`` (``loop`` or ``thread``) makes the process
step hang, blocking the event loop or the worker thread.

**State.** After each cycle the agent writes its state file and calls its
cycle listeners (see :mod:`.state`); ``edge-agent status`` reads the file.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field, fields, replace
from typing import Any

from edge_agent.config import GatewayConfig
from edge_agent.custody import LogState
from edge_agent.transfer import TransferError

from .dock import BleBackends, DockReport, async_dock, async_scan
from .gating import Conditions, async_read_conditions
from .metrics import AgentMetrics
from .progress import SILENT, Progress
from .runtime import AgentRuntime
from .state import StateFile, status_info, utc_now
from .steps import (
    StepReport,
    process_pending,
    purge_released,
    release_imported,
    upload_pending,
)
from .systemd import HeartbeatProgress, Liveness, SystemdNotifier

__all__ = ["TEST_HANG_ENV", "CycleReport", "EdgeAgent"]

_LOGGER = logging.getLogger(__name__)

TEST_HANG_ENV = "EDGE_AGENT_TEST_HANG"
# How long the test hook hangs (seconds): far beyond any test's stall limit,
# bounded so that a forgotten process ends by itself.
TEST_HANG_S = 300.0
_TEST_HANG_MODES = ("loop", "thread")


@dataclass
class CycleReport:
    """What one cycle did, and what it held back."""

    dock: DockReport = field(default_factory=DockReport)
    steps: StepReport = field(default_factory=StepReport)
    held_back: dict[str, str] = field(default_factory=dict)
    conditions: Conditions | None = None
    bytes_uploaded: int = 0
    uploads_deferred: int = 0
    interrupted: bool = False

    @property
    def quarantined(self) -> dict[str, str]:
        """Return the logs rejected in this cycle, with the reason."""
        return self.steps.quarantined


class EdgeAgent:
    """Run custody cycles for one gateway."""

    def __init__(
        self,
        runtime: AgentRuntime,
        backends: BleBackends,
        *,
        progress: Progress = SILENT,
        liveness: Liveness | None = None,
        metrics: AgentMetrics | None = None,
        notifier: SystemdNotifier | None = None,
        test_hang: str | None = None,
    ) -> None:
        """Work on ``runtime`` through the BLE ``backends``.

        Args:
            runtime: buffer, store, uploader and configuration.
            backends: bleak backends (None classes: BlueZ).
            progress: progress bars (the service keeps them silent).
            liveness: what the watchdog pinger watches; a new one when None.
            metrics: Prometheus metrics to update, if any.
            notifier: systemd notifier for STATUS= lines, if any.
            test_hang: ``loop`` or ``thread`` to hang the process step (tests).
        """
        if test_hang not in (None, *_TEST_HANG_MODES):
            raise ValueError(f"{TEST_HANG_ENV}={test_hang!r}: use loop or thread")
        self.runtime = runtime
        self.backends = backends
        self.liveness = liveness or Liveness(runtime.config.service.step_stall_s)
        self.progress: Progress = HeartbeatProgress(progress, self.liveness)
        self.metrics = metrics
        self.notifier = notifier or SystemdNotifier(None, None)
        self.test_hang = test_hang
        self.cycles = 0
        self.started_utc = utc_now()
        self.last_cycle_utc: str | None = None
        self.last_report: CycleReport | None = None
        self.last_error: dict[str, str] | None = None
        self.state_file = StateFile(runtime.config.workdir)
        # Called after every cycle (the MQTT status publisher, say); an
        # exception in one is logged and does not stop the agent.
        self.cycle_listeners: list[Callable[[CycleReport], None]] = []
        detector = runtime.detector
        self.model = None if detector is None else detector.model_block
        if metrics is not None:
            metrics.set_model(self.model)

    @property
    def who(self) -> str:
        """Return the log-line prefix of this gateway."""
        return f"gateway {self.runtime.config.gateway_id}"

    # ----- one cycle -----

    async def async_cycle(self, stop: asyncio.Event | None = None) -> CycleReport:
        """Run one cycle over the suits docked now; see the module docstring."""
        stop = stop or asyncio.Event()
        report = CycleReport()
        try:
            await self._async_work(report, stop)
        except Exception as exc:
            self._note_error(f"cycle failed: {exc!r}")
            raise
        finally:
            self.liveness.leave()
            self._finish_cycle(report)
        return report

    async def _async_work(self, report: CycleReport, stop: asyncio.Event) -> None:
        runtime = self.runtime

        # Dock: release what is committed, pull what is new.
        self._enter("scan", "scanning for docked suits")
        try:
            devices = await async_scan(runtime, self.backends)
        except TransferError as exc:
            devices = []
            report.dock.errors["scan"] = str(exc)
            _LOGGER.error("%s: scan failed: %s", self.who, exc)
        if devices and not stop.is_set():
            self._enter("dock", f"docking {len(devices)} suit(s)")
            report.dock = await async_dock(
                runtime, devices, self.backends, progress=self.progress, stop=stop
            )
        if report.dock.held_back:
            report.held_back["pull"] = "; ".join(
                sorted(set(report.dock.held_back.values()))
            )
        if stop.is_set():
            report.interrupted = True
            return

        # Process, off the event loop.
        self._enter("process", "processing pulled logs")
        report.steps.merge(await self._async_process())
        if stop.is_set():
            report.interrupted = True
            return

        # Upload while the gates allow, off the event loop.
        self._enter("gate", "checking power and uplink")
        report.conditions = await async_read_conditions(runtime.config)
        gate = report.conditions.upload_gate(runtime.config.gating)
        uploaded = StepReport()
        if gate.allowed:
            self._enter("upload", "uploading processed logs")
            uploaded = await asyncio.to_thread(upload_pending, runtime, self.progress)
            report.bytes_uploaded = self._output_bytes(uploaded.uploaded)
            report.steps.merge(uploaded)
        elif runtime.buffer.logs([LogState.PROCESSED]):
            report.held_back["upload"] = gate.reason or "held back"
            _LOGGER.info("%s: uploads held back: %s", self.who, gate.reason)
        report.uploads_deferred = len(uploaded.deferred)
        for log_id, reason in uploaded.deferred.items():
            self._note_error(f"log {log_id}: upload deferred: {reason}")
        report.steps.merge(release_imported(runtime))

        # Release what was just committed while the suits are still docked.
        if uploaded.uploaded and devices and not stop.is_set():
            self._enter("release", "telling suits which logs they may erase")
            released = await async_dock(
                runtime,
                devices,
                self.backends,
                pull=False,
                progress=self.progress,
                stop=stop,
            )
            report.dock.released += released.released
            report.dock.errors.update(released.errors)
        if stop.is_set():
            report.interrupted = True
            return

        self._enter("purge", "purging released logs")
        report.steps.merge(purge_released(runtime))

    async def _async_process(self) -> StepReport:
        runtime, progress = self.runtime, self.progress
        if self.test_hang == "loop":
            self._announce_hang()
            time.sleep(TEST_HANG_S)  # blocks the event loop on purpose
        hang_thread = self.test_hang == "thread"

        def work() -> StepReport:
            if hang_thread:
                self._announce_hang()
                time.sleep(TEST_HANG_S)
            return process_pending(runtime, progress)

        return await asyncio.to_thread(work)

    def _announce_hang(self) -> None:
        text = f"test hook {TEST_HANG_ENV}={self.test_hang}: process step hangs"
        _LOGGER.warning("%s: %s", self.who, text)
        self.notifier.status(text)

    def _enter(self, step: str, text: str) -> None:
        self.liveness.enter(step)
        self.notifier.status(f"{step}: {text}")
        _LOGGER.debug("%s: step %s", self.who, step)

    def _output_bytes(self, log_ids: list[str]) -> int:
        total = 0
        for log_id in log_ids:
            for path in self.runtime.buffer.get(log_id).outputs.values():
                if path.exists():
                    total += path.stat().st_size
        return total

    def _note_error(self, message: str) -> None:
        self.last_error = {"time_utc": utc_now(), "message": message}

    # ----- after a cycle: log, metrics, status -----

    def _finish_cycle(self, report: CycleReport) -> None:
        self.cycles += 1
        self.last_cycle_utc = utc_now()
        self.last_report = report
        for where, error in report.dock.errors.items():
            self._note_error(f"{where}: {error}")
        for log_id, reason in report.quarantined.items():
            self._note_error(f"log {log_id}: quarantined: {reason}")
        held = ", ".join(f"{w} ({r})" for w, r in report.held_back.items())
        _LOGGER.info(
            "%s: cycle %d: %d pulled, %d processed, %d uploaded, %d released, "
            "%d quarantined%s%s",
            self.who,
            self.cycles,
            len(report.dock.pulled),
            len(report.steps.processed),
            len(report.steps.uploaded),
            len(report.dock.released) + len(report.steps.released),
            len(report.quarantined),
            f"; held back: {held}" if held else "",
            "; stopped early" if report.interrupted else "",
        )
        if self.metrics is not None:
            self.metrics.record_cycle(report, self.runtime.buffer)
        self.write_state()
        for listener in self.cycle_listeners:
            try:
                listener(report)
            except Exception:
                _LOGGER.exception("%s: cycle listener %r failed", self.who, listener)
        self.notifier.status(
            f"idle after cycle {self.cycles}: {len(report.dock.pulled)} pulled, "
            f"{len(report.steps.uploaded)} uploaded"
            + (f"; held back: {held}" if held else "")
        )

    def status_info(self, activity: str = "idle") -> dict[str, Any]:
        """Return the agent's part of the MQTT status (``gateway-status/1``)."""
        report = self.last_report
        self._refresh_model()
        info = status_info(
            self.runtime.buffer,
            activity=activity,
            model_version=None if self.model is None else self.model["version"],
            held_back={} if report is None else report.held_back,
        )
        if self.runtime.models is not None:
            info["model_update"] = self.runtime.models.status_info()["model_update"]
        return info

    def _refresh_model(self) -> None:
        """Take the model block of the detector in use (updates swap it)."""
        detector = self.runtime.detector
        self.model = None if detector is None else detector.model_block

    def state_document(self, activity: str = "idle") -> dict[str, Any]:
        """Return what ``edge-agent status`` shows about this agent."""
        report = self.last_report
        self._refresh_model()
        conditions = None if report is None else report.conditions
        return {
            "gateway_id": self.runtime.config.gateway_id,
            "pid": os.getpid(),
            "started_utc": self.started_utc,
            "activity": activity,
            "cycles": self.cycles,
            "last_cycle_utc": self.last_cycle_utc,
            "held_back": {} if report is None else dict(report.held_back),
            "conditions": None if conditions is None else conditions.as_dict(),
            "model": self.model,
            "last_error": self.last_error,
        }

    def write_state(self, activity: str = "idle", *, force: bool = False) -> None:
        """Write the state file (see :mod:`.state`); never raises."""
        self.state_file.write(self.state_document(activity), force=force)

    def reload(self, config: GatewayConfig) -> list[str]:
        """Take suit pairings and gating rules from ``config``.

        Returns the other sections that differ; they apply at the next start.
        """
        current = self.runtime.config
        live = ("suits", "gating")
        pending = [
            f.name
            for f in fields(current)
            if f.name not in live
            and getattr(current, f.name) != getattr(config, f.name)
        ]
        self.runtime.config = replace(current, suits=config.suits, gating=config.gating)
        _LOGGER.info(
            "%s: configuration reloaded: %d suit(s) paired%s",
            self.who,
            len(config.suits),
            f"; {', '.join(pending)} change(s) apply after a restart"
            if pending
            else "",
        )
        return pending

    # ----- the service loop -----

    async def async_run(self, stop: asyncio.Event) -> None:
        """Run cycles until ``stop`` is set, idling between them."""
        idle_s = self.runtime.config.ble.idle_poll_s
        while not stop.is_set():
            await self.async_cycle(stop)
            if stop.is_set():
                break
            try:
                await asyncio.wait_for(stop.wait(), timeout=idle_s)
            except TimeoutError:
                continue
