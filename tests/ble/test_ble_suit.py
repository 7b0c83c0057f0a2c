"""Emulated suit: refusing bad commands, and serving log files over HCI/TCP."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from ble_helpers import RecordingSink, SuitFactory, random_logs
from bleak import BleakClient
from bleak.exc import BleakError

from edge_agent.transfer import SuitSession, async_find_suits
from firmware_bridge.ble.bleak_bumble import GatewayRadio
from firmware_bridge.ble.protocol import (
    ATT_APP_ERROR_BASE,
    CONTROL_POINT_UUID,
    Ack,
    ResultCode,
)
from firmware_bridge.ble.suit import (
    EmulatedSuit,
    HciTcpEndpoint,
    async_run_emulated_suit,
    log_id_for_file,
)

pytestmark = pytest.mark.timeout(60)


@pytest.mark.parametrize(
    ("command", "result"),
    [
        (b"\x09\x00", ResultCode.UNKNOWN_OPCODE),
        (b"\x02\x01\x00", ResultCode.MALFORMED),
        (Ack(0, 5).encode(), ResultCode.NO_STREAM),
    ],
)
async def test_bad_control_writes_are_refused_and_the_link_survives(
    start_suit: SuitFactory, radio: GatewayRadio, command: bytes, result: ResultCode
) -> None:
    await start_suit("SN000020", random_logs(20, [1000]))
    (device,) = await async_find_suits(0.3, backend=radio.scanner_backend)

    async with BleakClient(device, backend=radio.client_backend) as client:
        with pytest.raises(BleakError) as refused:
            await client.write_gatt_char(CONTROL_POINT_UUID, command, response=True)
        assert f"(0x{ATT_APP_ERROR_BASE + result:02x})" in str(refused.value)
        assert client.is_connected

    async with SuitSession(device, backend=radio.client_backend) as session:
        assert len(await session.async_list_logs()) == 1


async def test_suit_serves_log_files_to_a_gateway_over_hci_tcp(
    tmp_path: Path, sink: RecordingSink
) -> None:
    files = []
    for index, data in enumerate(random_logs(21, [40_000, 90_000]).values()):
        path = tmp_path / f"ride-{index}.bin"
        path.write_bytes(data)
        files.append(path)
    ready: asyncio.Future[HciTcpEndpoint] = asyncio.get_running_loop().create_future()

    def on_ready(_suit: EmulatedSuit, endpoint: HciTcpEndpoint | None) -> None:
        assert endpoint is not None
        ready.set_result(endpoint)

    stop = asyncio.Event()
    runner = asyncio.create_task(
        async_run_emulated_suit(
            files, "SN000021", hci_tcp_port=0, stop=stop, on_ready=on_ready
        )
    )
    try:
        endpoint = await asyncio.wait_for(ready, 10)
        radio = await GatewayRadio.async_open_hci(
            f"tcp-client:127.0.0.1:{endpoint.port}"
        )
        try:
            (device,) = await async_find_suits(0.3, backend=radio.scanner_backend)
            async with SuitSession(device, backend=radio.client_backend) as session:
                entries = await session.async_list_logs()
                assert [e.log_id for e in entries] == [
                    log_id_for_file("SN000021", path) for path in files
                ]
                for entry in entries:
                    await session.async_pull(entry, sink)
        finally:
            await radio.async_close()
    finally:
        stop.set()
        await asyncio.wait_for(runner, 10)

    for entry, path in zip(entries, files, strict=True):
        assert sink.read_log(entry.log_id) == path.read_bytes()
