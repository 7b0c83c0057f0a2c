"""The BLE part of a cycle: find docked suits, release, pull.

Per suit, in this order:

1. release every log the cloud has committed (state ``uploaded``), so the
   suit frees its flash as early as possible;
2. read the status; pull only while the suit is charging (it protects the
   suit's battery; ``[gating] pull_requires_charging``);
3. pull each listed log the buffer does not already hold complete, resuming
   a partial one from its durable offset.

A suit that is not paired to a rider is left alone: its logs would have no
owner in object storage.

Stopping (``stop`` set, e.g. on SIGTERM): no new suit or log is started, and
a pull under way is cancelled at once. That is safe because every byte range
is durable before the buffer records it: the log stays ``pulling`` at its
durable offset and the next dock resumes it. A release under way (one short
request) is finished, so the buffer never misses that the suit erased a log.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from bleak.backends.client import BaseBleakClient
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import BaseBleakScanner

from edge_agent.custody import BufferFullError, CustodyError, LogRecord, LogState
from edge_agent.transfer import (
    BondStore,
    ReleaseRefusedError,
    SuitLogEntry,
    SuitNotBondedError,
    SuitSession,
    TransferError,
    UploadReceipt,
    async_find_suits,
)
from firmware_bridge.ble.protocol import ResultCode

from .gating import pull_gate
from .progress import SILENT, Progress
from .runtime import AgentRuntime

__all__ = ["BleBackends", "DockReport", "async_dock", "async_scan"]

_LOGGER = logging.getLogger(__name__)

_T = TypeVar("_T")

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
# States in which the suit has been told it may erase the log.
_RELEASED_STATES = frozenset({LogState.RELEASED, LogState.PURGED})


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
    # Pulls that started from a durable offset left by an earlier attempt.
    resumed: list[str] = field(default_factory=list)
    # BLE reconnects inside pulls (each resumes at the durable offset).
    reconnects: int = 0
    held_back: dict[str, str] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    # A stop request cut the pass short; unfinished pulls resume next time.
    interrupted: bool = False


async def _async_unless_stopped(
    work: Awaitable[_T], stop: asyncio.Event | None
) -> tuple[bool, _T | None]:
    """Await ``work``; cancel it if ``stop`` is set first. Return (done, result)."""
    task = asyncio.ensure_future(work)
    if stop is None:
        return True, await task
    stopper = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
    except BaseException:
        task.cancel()
        raise
    finally:
        stopper.cancel()
    if task.done():
        return True, task.result()
    task.cancel()
    await asyncio.wait({task})
    return False, None


async def async_scan(runtime: AgentRuntime, backends: BleBackends) -> list[BLEDevice]:
    """Return the suits advertising within the configured scan time."""
    return await async_find_suits(runtime.config.ble.scan_timeout_s, backends.scanner)


async def _async_release_one(
    session: SuitSession, runtime: AgentRuntime, record: LogRecord, report: DockReport
) -> None:
    """Tell the suit it may erase one committed log, with the upload's receipt."""
    receipt = (
        UploadReceipt(record.object_keys, record.output_sha256)
        if session.bond is not None
        else None
    )
    try:
        await session.async_release(record.log_id, record.sha256_hex, receipt=receipt)
    except ReleaseRefusedError as exc:
        if exc.result != ResultCode.UNKNOWN_LOG:
            report.errors[record.log_id] = str(exc)
            _LOGGER.error(
                "suit %s: log %s: release refused: %s",
                session.serial,
                record.log_id,
                exc,
            )
            return
        # The suit erased it already: a release whose reply was lost (the
        # agent stopped between the suit's erase and our commit).
        _LOGGER.info(
            "suit %s: log %s already erased on the suit", session.serial, record.log_id
        )
    if record.state is LogState.UPLOADED:
        runtime.buffer.mark_released(record.log_id)
    report.released.append(record.log_id)
    _LOGGER.info("suit %s: log %s released", session.serial, record.log_id)


async def _async_release(
    session: SuitSession, runtime: AgentRuntime, report: DockReport
) -> None:
    for record in runtime.buffer.logs([LogState.UPLOADED]):
        if record.source == "ble" and record.suit_serial == session.serial:
            await _async_release_one(session, runtime, record, report)


def _needs_pull(runtime: AgentRuntime, entry: SuitLogEntry) -> bool:
    record = runtime.buffer.find(entry.log_id)
    return record is None or record.state not in _HELD_STATES


async def _async_pull_new(
    session: SuitSession,
    runtime: AgentRuntime,
    rider_id: str,
    progress: Progress,
    report: DockReport,
    stop: asyncio.Event | None,
) -> None:
    serial = session.serial
    listed = await session.async_list_logs()
    # A log the suit still lists although we released it: the suit lost the
    # erase (power cut before its flash write). Release it again.
    for entry in listed:
        record = runtime.buffer.find(entry.log_id)
        if record is not None and record.state in _RELEASED_STATES:
            await _async_release_one(session, runtime, record, report)
    entries = [e for e in listed if _needs_pull(runtime, e)]
    for number, entry in enumerate(entries, start=1):
        who = f"suit {serial}: log {entry.log_id}"
        if stop is not None and stop.is_set():
            report.interrupted = True
            return
        with progress.task(
            f"pull {entry.log_id[:8]} ({number}/{len(entries)})",
            total=entry.size_bytes,
            unit="B",
        ) as task:
            try:
                done, stats = await _async_unless_stopped(
                    session.async_pull(entry, runtime.buffer, progress=task.set_done),
                    stop,
                )
            except BufferFullError as exc:
                # The buffer logged why; the suit keeps the log until room returns.
                report.held_back[entry.log_id] = exc.reason
                continue
            except CustodyError as exc:
                report.errors[entry.log_id] = str(exc)
                _LOGGER.error("%s: not pulled: %s", who, exc)
                continue
        if not done or stats is None:
            record = runtime.buffer.find(entry.log_id)
            offset = 0 if record is None else record.durable_offset
            report.interrupted = True
            _LOGGER.info(
                "%s: pull stopped at durable offset %d of %d bytes; "
                "it resumes on the next dock",
                who,
                offset,
                entry.size_bytes,
            )
            return
        runtime.buffer.assign_rider(entry.log_id, rider_id)
        report.pulled.append(entry.log_id)
        received = stats.payload_bytes_received
        report.bytes_pulled += received
        report.bytes_resent += max(
            0, received - (entry.size_bytes - stats.start_offset)
        )
        report.reconnects += stats.reconnects
        if stats.start_offset > 0:
            report.resumed.append(entry.log_id)
        _LOGGER.info(
            "%s: pulled %d bytes in %.1f s (%d reconnects%s)",
            who,
            entry.size_bytes,
            stats.elapsed_s,
            stats.reconnects,
            f", resumed at byte {stats.start_offset}" if stats.start_offset else "",
        )


async def async_dock(
    runtime: AgentRuntime,
    devices: Sequence[BLEDevice],
    backends: BleBackends,
    *,
    pull: bool = True,
    progress: Progress = SILENT,
    stop: asyncio.Event | None = None,
) -> DockReport:
    """Release committed logs on each suit in ``devices``, then pull new ones.

    Args:
        runtime: the agent's buffer and configuration.
        devices: suits found by :func:`async_scan`.
        backends: the bleak backends to connect with.
        pull: False to release only.
        progress: progress reporting (one task per log pulled).
        stop: when set, start nothing new and cancel a pull under way (see
            the module docstring); the report says ``interrupted``.
    """
    report = DockReport()
    config = runtime.config
    bonds = BondStore.for_workdir(config.workdir)
    for device in devices:
        label = device.name or device.address
        if stop is not None and stop.is_set():
            report.interrupted = True
            break
        try:
            async with SuitSession(
                device,
                backend=backends.client,
                connect_attempts=config.ble.connect_attempts,
                bond_store=bonds,
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
                gate = pull_gate(status.charging, config.gating)
                if not gate.allowed:
                    report.held_back[serial] = gate.reason or "held back"
                    _LOGGER.info(
                        "suit %s: %s (battery %s%%); pull deferred",
                        serial,
                        gate.reason,
                        status.battery_pct,
                    )
                    continue
                await _async_pull_new(
                    session, runtime, identity.rider_id, progress, report, stop
                )
        except SuitNotBondedError as exc:
            report.held_back[label] = (
                "suit not bonded to this gateway (edge-agent pair)"
            )
            _LOGGER.warning("suit %s: %s", label, exc)
        except TransferError as exc:
            report.errors[label] = str(exc)
            _LOGGER.error("suit %s: dock pass failed: %s", label, exc)
    return report
