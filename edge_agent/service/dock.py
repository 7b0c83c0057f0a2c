"""The BLE part of a cycle: find docked suits, release, pull.

Per suit, in this order:

1. release every log the cloud has committed (state ``uploaded``), so the
   suit frees its flash as early as possible;
2. read the status; pull only while the suit is charging (it protects the
   suit's battery);
3. pull each listed log the buffer does not already hold complete, resuming
   a partial one from its durable offset.

A suit that is not paired to a rider is left alone: its logs would have no
owner in object storage.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

from bleak.backends.client import BaseBleakClient
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import BaseBleakScanner

from edge_agent.custody import CustodyError, LogState
from edge_agent.transfer import (
    ReleaseRefusedError,
    SuitLogEntry,
    SuitSession,
    TransferError,
    async_find_suits,
)

from .progress import SILENT, Progress
from .runtime import AgentRuntime

__all__ = ["BleBackends", "DockReport", "async_dock", "async_scan"]

_LOGGER = logging.getLogger(__name__)

# States in which the buffer already holds the whole log (nothing to pull).
_HELD_STATES = frozenset(
    {
        LogState.PULLED,
        LogState.PROCESSED,
        LogState.UPLOADED,
        LogState.RELEASED,
        LogState.PURGED,
    }
)


@dataclass(frozen=True)
class BleBackends:
    """bleak backends to use; None for both means the platform's (BlueZ)."""

    scanner: type[BaseBleakScanner] | None = None
    client: type[BaseBleakClient] | None = None


@dataclass
class DockReport:
    """What one dock pass did."""

    suits_seen: list[str] = field(default_factory=list)
    pulled: list[str] = field(default_factory=list)
    released: list[str] = field(default_factory=list)
    bytes_pulled: int = 0
    bytes_resent: int = 0
    held_back: dict[str, str] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)


async def async_scan(runtime: AgentRuntime, backends: BleBackends) -> list[BLEDevice]:
    """Return the suits advertising within the configured scan time."""
    return await async_find_suits(runtime.config.ble.scan_timeout_s, backends.scanner)


async def _async_release(
    session: SuitSession, runtime: AgentRuntime, report: DockReport
) -> None:
    buffer = runtime.buffer
    for record in buffer.logs([LogState.UPLOADED]):
        if record.source != "ble" or record.suit_serial != session.serial:
            continue
        try:
            await session.async_release(record.log_id, record.sha256_hex)
        except ReleaseRefusedError as exc:
            report.errors[record.log_id] = str(exc)
            _LOGGER.error(
                "suit %s: log %s: release refused: %s",
                session.serial,
                record.log_id,
                exc,
            )
            continue
        buffer.mark_released(record.log_id)
        report.released.append(record.log_id)
        _LOGGER.info("suit %s: log %s released", session.serial, record.log_id)


def _needs_pull(runtime: AgentRuntime, entry: SuitLogEntry) -> bool:
    record = runtime.buffer.find(entry.log_id)
    return record is None or record.state not in _HELD_STATES


async def _async_pull_new(
    session: SuitSession,
    runtime: AgentRuntime,
    rider_id: str,
    progress: Progress,
    report: DockReport,
) -> None:
    serial = session.serial
    entries = [e for e in await session.async_list_logs() if _needs_pull(runtime, e)]
    for number, entry in enumerate(entries, start=1):
        who = f"suit {serial}: log {entry.log_id}"
        with progress.task(
            f"pull {entry.log_id[:8]} ({number}/{len(entries)})",
            total=entry.size_bytes,
            unit="B",
        ) as task:
            try:
                stats = await session.async_pull(
                    entry, runtime.buffer, progress=task.set_done
                )
            except CustodyError as exc:
                report.errors[entry.log_id] = str(exc)
                _LOGGER.error("%s: not pulled: %s", who, exc)
                continue
        runtime.buffer.assign_rider(entry.log_id, rider_id)
        report.pulled.append(entry.log_id)
        received = stats.payload_bytes_received
        report.bytes_pulled += received
        report.bytes_resent += max(
            0, received - (entry.size_bytes - stats.start_offset)
        )
        _LOGGER.info(
            "%s: pulled %d bytes in %.1f s (%d reconnects)",
            who,
            entry.size_bytes,
            stats.elapsed_s,
            stats.reconnects,
        )


async def async_dock(
    runtime: AgentRuntime,
    devices: Sequence[BLEDevice],
    backends: BleBackends,
    *,
    pull: bool = True,
    progress: Progress = SILENT,
) -> DockReport:
    """Release committed logs on each suit in ``devices``, then pull new ones."""
    report = DockReport()
    config = runtime.config
    for device in devices:
        label = device.name or device.address
        try:
            async with SuitSession(
                device,
                backend=backends.client,
                connect_attempts=config.ble.connect_attempts,
            ) as session:
                serial = session.serial
                report.suits_seen.append(serial)
                identity = config.identity(serial)
                if identity is None:
                    report.held_back[serial] = "suit not paired to a rider"
                    _LOGGER.warning(
                        "suit %s: not paired to a rider; its logs stay on the suit",
                        serial,
                    )
                    continue
                await _async_release(session, runtime, report)
                if not pull:
                    continue
                status = await session.async_status()
                if not status.charging:
                    report.held_back[serial] = "suit not charging"
                    _LOGGER.info(
                        "suit %s: not charging (battery %s%%); pull deferred",
                        serial,
                        status.battery_pct,
                    )
                    continue
                await _async_pull_new(
                    session, runtime, identity.rider_id, progress, report
                )
        except TransferError as exc:
            report.errors[label] = str(exc)
            _LOGGER.error("suit %s: dock pass failed: %s", label, exc)
    return report
