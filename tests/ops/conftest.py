"""Fixtures for the operations tests: suit logs, emulated suits, SeaweedFS."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
from ops_helpers import LARGE_RIDE, SERIAL, SMALL_RIDE, InProcessSuit, SuitProcess

from edge_agent.service.dock import BleBackends
from firmware_bridge.ble.bleak_bumble import GatewayRadio
from firmware_bridge.ble.suit import EmulatedSuit, VirtualAir
from firmware_bridge.synth import RideSpec, ride_log_path, write_ride
from tests.support.seaweed import seaweed_s3

__all__ = ["seaweed_s3"]


def _write(folder: Path, spec: RideSpec) -> Path:
    path = ride_log_path(spec, folder)
    write_ride(spec, path)
    return path


@pytest.fixture(scope="session")
def small_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A short ride (about 0.2 MB), written once per session."""
    return _write(tmp_path_factory.mktemp("ops-small"), SMALL_RIDE)


@pytest.fixture(scope="session")
def large_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A longer ride (about 3 MB), written once per session."""
    return _write(tmp_path_factory.mktemp("ops-large"), LARGE_RIDE)


@pytest.fixture
def suit_process(tmp_path: Path) -> Iterator[Callable[[list[Path]], SuitProcess]]:
    """Start ``firmware-bridge emulate`` processes; stop them after the test."""
    started: list[SuitProcess] = []

    def start(logs: list[Path]) -> SuitProcess:
        suit = SuitProcess(logs, tmp_path / f"suit-{len(started)}.log")
        started.append(suit)
        return suit

    yield start
    for suit in started:
        suit.stop()


async def _docked(logs: list[Path]) -> AsyncIterator[InProcessSuit]:
    air = VirtualAir()
    suit = EmulatedSuit(SERIAL, logs, charging=True)
    await suit.async_start(air)
    radio = await GatewayRadio.async_create(air)
    try:
        yield InProcessSuit(
            suit, BleBackends(radio.scanner_backend, radio.client_backend)
        )
    finally:
        await radio.async_close()
        await suit.async_stop()


@pytest.fixture
async def docked_suit(small_log: Path) -> AsyncIterator[InProcessSuit]:
    """A charging suit holding the small log, in this process."""
    async for docked in _docked([small_log]):
        yield docked


@pytest.fixture
async def docked_large_suit(
    small_log: Path, large_log: Path
) -> AsyncIterator[InProcessSuit]:
    """A charging suit holding the small and the large log, in this process."""
    async for docked in _docked([small_log, large_log]):
        yield docked
