"""``edge-agent demo``: the main job end to end on the embedded default.

An emulated suit (a bumble GATT server on an in-process link) holding two
synthesised logs, one with a crash, is paired (LE Secure Connections, bonded)
and docks. The agent finds it through bleak
(with a bleak backend on a bumble controller on the same link), pulls both
logs into its custody buffer, processes them, uploads into a local-directory
store, and tells the suit it may erase them. Nothing leaves the process.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edge_agent.config import (
    BleConfig,
    GatewayConfig,
    GatingConfig,
    StoreConfig,
    SuitIdentity,
)
from edge_agent.custody import LogRecord
from edge_agent.transfer import BondStore, async_find_suits, async_pair_suit
from firmware_bridge.ble.bleak_bumble import GatewayRadio
from firmware_bridge.ble.suit import EmulatedSuit, VirtualAir
from firmware_bridge.synth import RideSpec, ride_log_path, truth_path, write_ride

from .agent import CycleReport, EdgeAgent
from .dock import BleBackends
from .progress import SILENT, Progress
from .runtime import open_runtime

__all__ = ["DEMO_RIDES", "DemoResult", "async_run_demo"]

_LOGGER = logging.getLogger(__name__)

DEMO_SERIAL = "SUIT-DEMO-01"
DEMO_RIDER = "rider-demo"
DEMO_GATEWAY = "gw-demo"
# Scan time to find the suit in pairing mode.
PAIRING_SCAN_S = 1.0
# Two short rides at 400 Hz (about 3 MB each): enough riding for turns,
# leans and a crash, small enough that the emulated BLE pull takes seconds.
DEMO_RIDES = (
    RideSpec(
        seed=20261,
        scenario="city",
        riding_s=300.0,
        sample_rate_hz=400.0,
        walk_before_s=20.0,
        walk_after_s=20.0,
        suit_serial=DEMO_SERIAL,
    ),
    RideSpec(
        seed=20262,
        scenario="track",
        riding_s=240.0,
        sample_rate_hz=400.0,
        crash="highside",
        crash_at_s=180.0,
        walk_before_s=20.0,
        walk_after_s=0.0,
        suit_serial=DEMO_SERIAL,
    ),
)


@dataclass(frozen=True)
class DemoResult:
    """Everything the demo summary shows."""

    workdir: Path
    store_root: Path
    records: list[LogRecord]
    truths: dict[str, dict[str, Any]]
    erased_on_suit: list[str]
    receipted_on_suit: list[str]
    cycle: CycleReport


def _synthesise(suit_dir: Path) -> tuple[list[Path], dict[str, dict[str, Any]]]:
    """Write the demo rides (once; they are reproducible by seed)."""
    suit_dir.mkdir(parents=True, exist_ok=True)
    paths, truths = [], {}
    for spec in DEMO_RIDES:
        path = ride_log_path(spec, suit_dir)
        log_id = path.stem
        if not (path.exists() and truth_path(path).exists()):
            write_ride(spec, path)
        truths[log_id] = json.loads(truth_path(path).read_text())
        paths.append(path)
    return paths, truths


async def _async_pair(suit: EmulatedSuit, radio: GatewayRadio, workdir: Path) -> None:
    """Bond the gateway with the suit, as `edge-agent pair` does with a rider.

    The rider holds the suit's button (pairing mode) and the operator types
    the passkey the suit shows; here the radio reads it from the suit. The
    suit is new every run, so an older bond in the workdir is dropped first.
    """
    bonds = BondStore.for_workdir(workdir)
    bonds.remove(DEMO_SERIAL)
    suit.enter_pairing_mode()

    async def passkey(_address: str) -> int | None:
        return await suit.async_read_passkey()

    radio.passkey_provider = passkey
    (device,) = await async_find_suits(PAIRING_SCAN_S, radio.scanner_backend)
    await async_pair_suit(device, radio.client_backend, bonds)
    suit.end_pairing_mode()


def demo_config(workdir: Path) -> GatewayConfig:
    """Return the gateway configuration of the demo (emulated BLE, local store)."""
    return GatewayConfig(
        gateway_id=DEMO_GATEWAY,
        workdir=workdir,
        store=StoreConfig(kind="local", root="store"),
        ble=BleConfig(backend="emulated", scan_timeout_s=1.0),
        # A demo on a laptop running on battery still uploads.
        gating=GatingConfig(upload_requires_external_power=False),
        suits={DEMO_SERIAL: SuitIdentity(DEMO_SERIAL, DEMO_RIDER)},
    )


async def async_run_demo(workdir: Path, progress: Progress = SILENT) -> DemoResult:
    """Run the demo in ``workdir`` (reusing its synthesised logs if present)."""
    workdir = workdir.resolve()
    paths, truths = _synthesise(workdir / "suit")
    config = demo_config(workdir)

    air = VirtualAir()
    suit = EmulatedSuit(
        DEMO_SERIAL, paths, battery_pct=64, charging=True, require_bond=True
    )
    await suit.async_start(air)
    radio = await GatewayRadio.async_create(air)
    runtime = open_runtime(config)
    try:
        await _async_pair(suit, radio, workdir)
        agent = EdgeAgent(
            runtime,
            BleBackends(radio.scanner_backend, radio.client_backend),
            progress=progress,
        )
        cycle = await agent.async_cycle()
        records = [runtime.buffer.get(log_id) for log_id in truths]
    finally:
        runtime.close()
        await radio.async_close()
        await suit.async_stop()
    return DemoResult(
        workdir=workdir,
        store_root=config.store_root,
        records=records,
        truths=truths,
        erased_on_suit=sorted(suit.erased_log_ids),
        receipted_on_suit=sorted(suit.release_receipts),
        cycle=cycle,
    )
