"""Helpers for agent-level tests: the test suit, its rides, a gateway config."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from edge_agent.config import BleConfig, GatewayConfig, StoreConfig, SuitIdentity
from edge_agent.service.dock import BleBackends
from firmware_bridge.ble.suit import EmulatedSuit
from firmware_bridge.synth import RideSpec

SERIAL = "SUIT-TEST-01"
RIDER = "rider-test"

SMALL_RIDES = (
    RideSpec(
        seed=7101,
        scenario="city",
        riding_s=60.0,
        sample_rate_hz=200.0,
        walk_before_s=5.0,
        walk_after_s=5.0,
        suit_serial=SERIAL,
    ),
    RideSpec(
        seed=7102,
        scenario="track",
        riding_s=60.0,
        sample_rate_hz=200.0,
        crash="lowside",
        crash_at_s=40.0,
        walk_before_s=5.0,
        walk_after_s=0.0,
        suit_serial=SERIAL,
    ),
)


@dataclass
class DockedSuit:
    """An emulated suit on the air with the gateway's radio beside it."""

    suit: EmulatedSuit
    backends: BleBackends
    log_paths: list[Path]


def gateway_config(workdir: Path) -> GatewayConfig:
    """Return a gateway configuration for the test suit with a local store."""
    return GatewayConfig(
        gateway_id="gw-test",
        workdir=workdir,
        store=StoreConfig(kind="local", root="store"),
        ble=BleConfig(backend="emulated", scan_timeout_s=0.5),
        suits={SERIAL: SuitIdentity(SERIAL, RIDER)},
    )
