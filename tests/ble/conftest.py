"""Fixtures for the BLE transfer tests: an emulated air, suits, a gateway radio.

Everything runs over the real bumble stack (controllers on a LocalLink, host,
L2CAP, ATT, GATT) and the gateway talks to it through bleak's public API.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from ble_helpers import RecordingSink, SuitFactory

from firmware_bridge.ble.bleak_bumble import GatewayRadio
from firmware_bridge.ble.suit import EmulatedSuit, VirtualAir


@pytest.fixture
def air() -> VirtualAir:
    return VirtualAir()


@pytest.fixture
async def start_suit(air: VirtualAir) -> AsyncIterator[SuitFactory]:
    started: list[EmulatedSuit] = []

    async def start(
        serial: str, logs: Mapping[str, bytes] | list[Path], **options: Any
    ) -> EmulatedSuit:
        suit = EmulatedSuit(serial, logs, **options)
        await suit.async_start(air)
        started.append(suit)
        return suit

    yield start
    for suit in started:
        await suit.async_stop()


@pytest.fixture
async def radio(air: VirtualAir) -> AsyncIterator[GatewayRadio]:
    gateway = await GatewayRadio.async_create(air)
    yield gateway
    await gateway.async_close()


@pytest.fixture
def sink(tmp_path: Path) -> RecordingSink:
    return RecordingSink(tmp_path / "pulled")
