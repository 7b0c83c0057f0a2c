"""An encrypted, budgeted buffer as the sink of real pulls over the bumble stack."""

from __future__ import annotations

import hashlib
import random
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from bleak.backends.device import BLEDevice

from edge_agent.custody import (
    OUTPUT_RESERVE_RATIO,
    BufferFullError,
    CustodyBuffer,
    LogState,
)
from edge_agent.transfer import SuitLinkError, SuitSession, async_find_suits
from firmware_bridge.ble.bleak_bumble import GatewayRadio
from firmware_bridge.ble.suit import EmulatedSuit, VirtualAir

pytestmark = pytest.mark.timeout(120)

SERIAL = "SN-CUSTODY"
SCAN_S = 0.3


def _logs(seed: int, sizes: list[int]) -> dict[str, bytes]:
    rng = random.Random(seed)
    return {uuid.UUID(int=rng.getrandbits(128)).hex: rng.randbytes(n) for n in sizes}


@pytest.fixture
async def radio() -> AsyncIterator[tuple[VirtualAir, GatewayRadio]]:
    air = VirtualAir()
    gateway = await GatewayRadio.async_create(air)
    yield air, gateway
    await gateway.async_close()


async def _suit(air: VirtualAir, logs: dict[str, bytes]) -> EmulatedSuit:
    suit = EmulatedSuit(SERIAL, logs)
    await suit.async_start(air)
    return suit


async def _device(gateway: GatewayRadio) -> BLEDevice:
    [device] = await async_find_suits(SCAN_S, backend=gateway.scanner_backend)
    return device


async def test_encrypted_pull_resumes_in_a_new_session_after_link_loss(
    radio: tuple[VirtualAir, GatewayRadio], buffer_root: Path, key_file: Path
) -> None:
    air, gateway = radio
    logs = _logs(11, [700_000])
    ((log_id, data),) = logs.items()
    suit = await _suit(air, logs)
    suit.faults.disconnect_after_bytes(300_000)
    try:
        with CustodyBuffer.open(buffer_root, key_file=key_file) as buffer:
            device = await _device(gateway)
            async with SuitSession(
                device, backend=gateway.client_backend, max_resumes=0
            ) as first:
                (entry,) = await first.async_list_logs()
                with pytest.raises(SuitLinkError):
                    await first.async_pull(entry, buffer)
            durable = buffer.get(log_id).durable_offset
        assert 0 < durable < len(data)

        # A restart of the agent in between: recovery, then the second session.
        with CustodyBuffer.open(buffer_root, key_file=key_file) as buffer:
            async with SuitSession(device, backend=gateway.client_backend) as second:
                stats = await second.async_pull(entry, buffer)
            record = buffer.get(log_id)
            with buffer.readable_raw(log_id) as plain:
                stored = plain.read_bytes()
    finally:
        await suit.async_stop()

    assert stats.start_offset == durable
    assert record.state is LogState.PULLED
    assert stored == data
    assert hashlib.sha256(stored).hexdigest() == record.sha256_hex
    raw = (buffer_root / "logs" / f"{log_id}.bin").read_bytes()
    assert data[1000:1032] not in raw


async def test_full_buffer_refuses_before_streaming_and_the_suit_keeps_the_log(
    radio: tuple[VirtualAir, GatewayRadio], buffer_root: Path, key_file: Path
) -> None:
    air, gateway = radio
    logs = _logs(12, [400_000, 400_000])
    (first_id, second_id) = logs
    suit = await _suit(air, logs)
    # Room for the first log and its outputs, not for a second one.
    need_bytes = int(400_000 * (1 + OUTPUT_RESERVE_RATIO))
    budget = int(need_bytes * 1.3)
    try:
        with CustodyBuffer.open(
            buffer_root, key_file=key_file, budget_bytes=budget
        ) as buffer:
            device = await _device(gateway)
            async with SuitSession(device, backend=gateway.client_backend) as session:
                first, second = await session.async_list_logs()
                await session.async_pull(first, buffer)
                streamed = suit.stats.payload_bytes_by_log.get(second_id, 0)
                with pytest.raises(BufferFullError, match="buffer full"):
                    await session.async_pull(second, buffer)
                assert suit.stats.payload_bytes_by_log.get(second_id, 0) == streamed
                assert buffer.find(second_id) is None

                # Upload commits the first log: its local copy may go, and
                # the second pull is admitted on the same dock.
                with buffer.processing_dir(first_id) as folder:
                    csv = folder / f"{first_id}.csv.gz"
                    csv.write_bytes(b"\x1f\x8b" + bytes(1000))
                    buffer.mark_processed(first_id, {"raw_csv": csv}, {}, False)
                buffer.mark_uploaded(first_id, {"raw_csv": f"raw/{first_id}"})
                await session.async_pull(second, buffer)
                evicted = buffer.get(first_id)
                pulled = buffer.get(second_id)
            kept = suit.stored_log_ids
    finally:
        await suit.async_stop()

    assert evicted.evicted_at is not None and evicted.raw_path is None
    assert pulled.state is LogState.PULLED
    assert kept == [first_id, second_id]  # nothing erased
