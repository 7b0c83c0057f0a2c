"""End-to-end transfer: gateway bleak code <-> bumble stack <-> emulated suit."""

from __future__ import annotations

import hashlib

import pytest
from ble_helpers import RecordingSink, SuitFactory, random_logs
from bleak.backends.device import BLEDevice

from edge_agent.transfer import (
    ReleaseRefusedError,
    SuitLinkError,
    SuitSession,
    TransferStalledError,
    async_find_suits,
)
from firmware_bridge.ble.bleak_bumble import GatewayRadio
from firmware_bridge.ble.protocol import ResultCode, chunk_payload_for_mtu

pytestmark = pytest.mark.timeout(120)

SCAN_S = 0.3
FULL_CHUNK_BYTES = chunk_payload_for_mtu(247)


async def _find(radio: GatewayRadio, name: str) -> BLEDevice:
    suits = await async_find_suits(SCAN_S, backend=radio.scanner_backend)
    matches = [device for device in suits if device.name == name]
    assert matches, f"no suit named {name!r} among {suits}"
    return matches[0]


def _assert_contiguous_appends(
    sink: RecordingSink, log_id: str, start: int = 0
) -> None:
    end = start
    for appended_id, offset, size in sink.appends:
        if appended_id == log_id:
            assert offset == end, "append left a gap or repeated bytes"
            end += size


async def test_find_suits_reports_each_advertising_suit(
    start_suit: SuitFactory, radio: GatewayRadio
) -> None:
    await start_suit("SN000001", random_logs(1, [100]))
    await start_suit("SUIT-LONG-SERIAL-42", random_logs(2, [100]))

    suits = await async_find_suits(SCAN_S, backend=radio.scanner_backend)

    assert sorted(device.name or "" for device in suits) == ["SN000001", "SUIT-LON"]
    async with SuitSession(
        await _find(radio, "SUIT-LON"), backend=radio.client_backend
    ) as session:
        assert session.serial == "SUIT-LONG-SERIAL-42"


async def test_status_reports_battery_charging_and_stored_logs(
    start_suit: SuitFactory, radio: GatewayRadio
) -> None:
    suit = await start_suit(
        "SN000002", random_logs(3, [10, 20]), battery_pct=55, charging=False
    )
    async with SuitSession(
        await _find(radio, "SN000002"), backend=radio.client_backend
    ) as session:
        status = await session.async_status()
        assert (status.battery_pct, status.charging, status.stored_logs) == (
            55,
            False,
            2,
        )
        suit.set_power(None, True)
        status = await session.async_status()
        assert (status.battery_pct, status.charging) == (None, True)


async def test_pull_full_logs_stores_identical_bytes(
    start_suit: SuitFactory, radio: GatewayRadio, sink: RecordingSink
) -> None:
    logs = random_logs(4, [200_000, 700_000, 1_500_000])
    suit = await start_suit("SN000003", logs)

    async with SuitSession(
        await _find(radio, "SN000003"), backend=radio.client_backend
    ) as session:
        entries = await session.async_list_logs()
        assert [entry.log_id for entry in entries] == list(logs)
        for entry in entries:
            progress: list[int] = []
            stats = await session.async_pull(entry, sink, progress.append)
            stored = sink.read_log(entry.log_id)
            assert hashlib.sha256(stored).hexdigest() == entry.sha256_hex
            assert stored == logs[entry.log_id]
            assert (stats.duplicate_chunks, stats.chunks_nacked) == (0, 0)
            assert stats.chunk_payload_bytes == [FULL_CHUNK_BYTES]
            assert progress[-1] == entry.size_bytes
            assert progress == sorted(progress)
            _assert_contiguous_appends(sink, entry.log_id)

    assert sink.completed == list(logs)
    assert suit.stored_log_ids == list(logs), "a pull must not erase anything"


async def test_disconnect_mid_log_resumes_without_gap_or_duplicate(
    start_suit: SuitFactory, radio: GatewayRadio, sink: RecordingSink
) -> None:
    logs = random_logs(5, [1_000_000])
    (log_id,) = logs
    suit = await start_suit("SN000004", logs)
    suit.faults.disconnect_after_bytes(400_000)

    async with SuitSession(
        await _find(radio, "SN000004"), backend=radio.client_backend
    ) as session:
        (entry,) = await session.async_list_logs()
        stats = await session.async_pull(entry, sink)

    assert sink.read_log(log_id) == logs[log_id]
    _assert_contiguous_appends(sink, log_id)
    assert stats.reconnects == 1
    assert suit.stats.connections == 2
    first, second = suit.stats.streams
    assert first.offset == 0
    assert second.offset >= 400_000 - FULL_CHUNK_BYTES
    resent_bytes = suit.stats.payload_bytes_by_log[log_id] - len(logs[log_id])
    assert 0 <= resent_bytes <= FULL_CHUNK_BYTES


async def test_pull_resumes_from_the_sink_offset_in_a_new_session(
    start_suit: SuitFactory, radio: GatewayRadio, sink: RecordingSink
) -> None:
    logs = random_logs(6, [600_000])
    (log_id,) = logs
    suit = await start_suit("SN000005", logs)
    suit.faults.disconnect_after_bytes(250_000)
    device = await _find(radio, "SN000005")

    async with SuitSession(
        device, backend=radio.client_backend, max_resumes=0
    ) as first:
        (entry,) = await first.async_list_logs()
        with pytest.raises(SuitLinkError):
            await first.async_pull(entry, sink)
    durable = len(sink.stored_bytes(log_id))
    assert 0 < durable <= 250_000 + FULL_CHUNK_BYTES
    assert sink.completed == []

    async with SuitSession(device, backend=radio.client_backend) as second:
        stats = await second.async_pull(entry, sink)

    assert stats.start_offset == durable
    assert sink.read_log(log_id) == logs[log_id]
    _assert_contiguous_appends(sink, log_id)
    assert suit.stats.streams[-1].offset == durable


async def test_lost_notifications_are_re_requested(
    start_suit: SuitFactory, radio: GatewayRadio, sink: RecordingSink
) -> None:
    logs = random_logs(7, [300_000])
    (log_id,) = logs
    suit = await start_suit("SN000006", logs)
    last_chunk = -(-300_000 // FULL_CHUNK_BYTES) - 1
    suit.faults.drop_chunk_once(10)  # gap: seen when chunk 11 arrives
    suit.faults.drop_chunk_once(last_chunk)  # tail: seen at STREAM_END

    async with SuitSession(
        await _find(radio, "SN000006"), backend=radio.client_backend
    ) as session:
        (entry,) = await session.async_list_logs()
        stats = await session.async_pull(entry, sink)

    assert suit.stats.chunks_dropped == 2
    assert stats.chunks_nacked >= 2
    assert suit.stats.chunks_resent >= 2
    assert sink.read_log(log_id) == logs[log_id]
    _assert_contiguous_appends(sink, log_id)


async def test_a_gap_is_never_stored_or_completed(
    start_suit: SuitFactory, radio: GatewayRadio, sink: RecordingSink
) -> None:
    logs = random_logs(8, [100_000])
    (log_id,) = logs
    suit = await start_suit("SN000007", logs)
    dead_offset = 20 * FULL_CHUNK_BYTES + 5
    suit.faults.drop_offset_always(dead_offset)

    async with SuitSession(
        await _find(radio, "SN000007"),
        backend=radio.client_backend,
        max_resumes=1,
        idle_timeout_s=0.2,
        max_idle_rounds=2,
    ) as session:
        (entry,) = await session.async_list_logs()
        with pytest.raises(TransferStalledError):
            await session.async_pull(entry, sink)

    assert sink.completed == []
    stored = sink.stored_bytes(log_id)
    assert stored == logs[log_id][: 20 * FULL_CHUNK_BYTES]
    assert all(offset + size <= dead_offset for _, offset, size in sink.appends)


async def test_chunk_size_follows_an_mtu_known_only_after_connect(
    start_suit: SuitFactory, radio: GatewayRadio, sink: RecordingSink
) -> None:
    logs = random_logs(9, [30_000, 30_000])
    suit = await start_suit("SN000008", logs)
    radio.att_mtu = None  # the gateway does not exchange; the link starts at 23

    async with SuitSession(
        await _find(radio, "SN000008"), backend=radio.client_backend
    ) as session:
        first, second = await session.async_list_logs()
        stats_before = await session.async_pull(first, sink)
        assert await suit.async_request_mtu(185) == 185
        stats_after = await session.async_pull(second, sink)

    assert stats_before.chunk_payload_bytes == [chunk_payload_for_mtu(23)]
    assert stats_after.chunk_payload_bytes == [chunk_payload_for_mtu(185)]
    assert [(s.att_mtu, s.chunk_payload_bytes) for s in suit.stats.streams] == [
        (23, 12),
        (185, 174),
    ]
    for log_id, data in logs.items():
        assert sink.read_log(log_id) == data


async def test_chunk_size_follows_an_mtu_changed_between_connections(
    start_suit: SuitFactory, radio: GatewayRadio, sink: RecordingSink
) -> None:
    logs = random_logs(10, [300_000])
    (log_id,) = logs
    suit = await start_suit("SN000009", logs)

    async with SuitSession(
        await _find(radio, "SN000009"), backend=radio.client_backend
    ) as session:
        (entry,) = await session.async_list_logs()
        suit.set_max_mtu(100)  # takes effect at the next connection's exchange
        suit.faults.disconnect_after_bytes(100_000)
        stats = await session.async_pull(entry, sink)

    assert stats.chunk_payload_bytes == [FULL_CHUNK_BYTES, chunk_payload_for_mtu(100)]
    assert [s.att_mtu for s in suit.stats.streams] == [247, 100]
    assert sink.read_log(log_id) == logs[log_id]
    _assert_contiguous_appends(sink, log_id)


async def test_release_needs_the_matching_sha256(
    start_suit: SuitFactory, radio: GatewayRadio, sink: RecordingSink
) -> None:
    logs = random_logs(11, [50_000, 60_000])
    suit = await start_suit("SN000010", logs)

    async with SuitSession(
        await _find(radio, "SN000010"), backend=radio.client_backend
    ) as session:
        kept, released = await session.async_list_logs()
        await session.async_pull(released, sink)

        with pytest.raises(ReleaseRefusedError) as refused:
            await session.async_release(released.log_id, kept.sha256_hex)
        assert refused.value.result is ResultCode.SHA_MISMATCH
        assert suit.erased_log_ids == []
        assert (await session.async_status()).stored_logs == 2

        await session.async_release(released.log_id, released.sha256_hex)
        assert suit.erased_log_ids == [released.log_id]
        assert (await session.async_status()).stored_logs == 1
        assert [e.log_id for e in await session.async_list_logs()] == [kept.log_id]

        with pytest.raises(ReleaseRefusedError) as again:
            await session.async_release(released.log_id, released.sha256_hex)
        assert again.value.result is ResultCode.UNKNOWN_LOG


async def test_log_list_pages_past_one_reply(
    start_suit: SuitFactory, radio: GatewayRadio
) -> None:
    logs = random_logs(12, [10 + n for n in range(70)])
    await start_suit("SN000011", logs)

    async with SuitSession(
        await _find(radio, "SN000011"), backend=radio.client_backend
    ) as session:
        entries = await session.async_list_logs()

    assert [entry.log_id for entry in entries] == list(logs)
    assert [entry.size_bytes for entry in entries] == [len(d) for d in logs.values()]


@pytest.mark.parametrize("size_bytes", [0, 1, FULL_CHUNK_BYTES, FULL_CHUNK_BYTES + 1])
async def test_pull_edge_sizes(
    start_suit: SuitFactory, radio: GatewayRadio, sink: RecordingSink, size_bytes: int
) -> None:
    logs = random_logs(13, [size_bytes])
    (log_id,) = logs
    await start_suit("SN000012", logs)

    async with SuitSession(
        await _find(radio, "SN000012"), backend=radio.client_backend
    ) as session:
        (entry,) = await session.async_list_logs()
        stats = await session.async_pull(entry, sink)

    assert sink.read_log(log_id) == logs[log_id]
    assert stats.payload_bytes_received == size_bytes
