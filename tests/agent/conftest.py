"""Fixtures for agent-level tests: an emulated suit with small synthesised logs."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from agent_helpers import SERIAL, SMALL_RIDES, DockedSuit

from edge_agent.service.dock import BleBackends
from firmware_bridge.ble.bleak_bumble import GatewayRadio
from firmware_bridge.ble.suit import EmulatedSuit, VirtualAir
from firmware_bridge.synth import ride_log_path, write_ride


@pytest.fixture(scope="session")
def small_logs(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Write the small rides once per session."""
    folder = tmp_path_factory.mktemp("suit-logs")
    paths = []
    for spec in SMALL_RIDES:
        path = ride_log_path(spec, folder)
        write_ride(spec, path)
        paths.append(path)
    return paths


@pytest.fixture
async def docked_suit(small_logs: list[Path]) -> AsyncIterator[DockedSuit]:
    """Start an emulated suit holding the small logs, and a gateway radio."""
    air = VirtualAir()
    suit = EmulatedSuit(SERIAL, small_logs, charging=True)
    await suit.async_start(air)
    radio = await GatewayRadio.async_create(air)
    try:
        yield DockedSuit(
            suit, BleBackends(radio.scanner_backend, radio.client_backend), small_logs
        )
    finally:
        await radio.async_close()
        await suit.async_stop()
