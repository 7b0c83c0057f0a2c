"""The gateway agent: one cycle of custody work, and the service loop.

A cycle::

    scan -> per docked suit: release committed logs, pull new ones
         -> process pulled logs -> upload processed logs
         -> release what was just committed (same suits, no new scan)
         -> purge released logs per retention

Processing and uploading run in a worker thread so BLE callbacks and signal
handling stay responsive. Every step starts from the custody states, so a
cycle after a restart picks up wherever the last one stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field

from edge_agent.transfer import TransferError

from .dock import BleBackends, DockReport, async_dock, async_scan
from .progress import SILENT, Progress
from .runtime import AgentRuntime
from .steps import (
    StepReport,
    process_pending,
    purge_released,
    release_imported,
    upload_pending,
)

__all__ = ["CycleReport", "EdgeAgent"]

_LOGGER = logging.getLogger(__name__)


@dataclass
class CycleReport:
    """What one cycle did."""

    dock: DockReport = field(default_factory=DockReport)
    steps: StepReport = field(default_factory=StepReport)

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
    ) -> None:
        self.runtime = runtime
        self.backends = backends
        self.progress = progress
        self.cycles = 0

    async def async_cycle(self) -> CycleReport:
        """Run one cycle over the suits docked now; see the module docstring."""
        report = CycleReport()
        runtime = self.runtime

        # Dock: release what is committed, pull what is new.
        try:
            devices = await async_scan(runtime, self.backends)
        except TransferError as exc:
            devices = []
            report.dock.errors["scan"] = str(exc)
            _LOGGER.error("gateway %s: scan failed: %s", runtime.config.gateway_id, exc)
        if devices:
            report.dock = await async_dock(
                runtime, devices, self.backends, progress=self.progress
            )

        # Process and upload, off the event loop.
        processed = await asyncio.to_thread(process_pending, runtime, self.progress)
        uploaded = await asyncio.to_thread(upload_pending, runtime, self.progress)
        report.steps.merge(processed)
        report.steps.merge(uploaded)
        report.steps.merge(release_imported(runtime))

        # Release what was just committed while the suits are still docked.
        if uploaded.uploaded and devices:
            released = await async_dock(
                runtime, devices, self.backends, pull=False, progress=self.progress
            )
            report.dock.released += released.released
            report.dock.errors.update(released.errors)

        report.steps.merge(purge_released(runtime))
        self.cycles += 1
        _LOGGER.info(
            "gateway %s: cycle %d: %d pulled, %d processed, %d uploaded, "
            "%d released, %d quarantined",
            runtime.config.gateway_id,
            self.cycles,
            len(report.dock.pulled),
            len(report.steps.processed),
            len(report.steps.uploaded),
            len(report.dock.released) + len(report.steps.released),
            len(report.quarantined),
        )
        return report

    async def async_run(self, stop: asyncio.Event) -> None:
        """Run cycles until ``stop`` is set, idling between them."""
        idle_s = self.runtime.config.ble.idle_poll_s
        while not stop.is_set():
            await self.async_cycle()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=idle_s)
