"""A restart in every custody state resumes the log from that state."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path

import pytest
from agent_helpers import DockedSuit, gateway_config

from edge_agent.custody import LogState
from edge_agent.service.agent import EdgeAgent
from edge_agent.service.dock import async_dock, async_scan
from edge_agent.service.runtime import AgentRuntime, open_runtime
from edge_agent.service.steps import process_pending, upload_pending

pytestmark = pytest.mark.timeout(300)


def _states(runtime: AgentRuntime) -> list[LogState]:
    return sorted(record.state for record in runtime.buffer.logs())


async def _finish(workdir: Path, docked: DockedSuit) -> AgentRuntime:
    """Open a fresh runtime (the restart) and run one full cycle."""
    runtime = open_runtime(gateway_config(workdir))
    await EdgeAgent(runtime, docked.backends).async_cycle()
    return runtime


def _assert_committed(runtime: AgentRuntime, docked: DockedSuit) -> None:
    records = runtime.buffer.logs()
    assert len(records) == len(docked.log_paths)
    assert all(r.state is LogState.PURGED for r in records)
    assert sorted(docked.suit.erased_log_ids) == sorted(r.log_id for r in records)
    for path in docked.log_paths:
        record = next(r for r in records if path.stem == r.log_id)
        assert record.sha256_hex == hashlib.sha256(path.read_bytes()).hexdigest()
        store = runtime.config.store_root
        for key in record.object_keys.values():
            assert (store / key).is_file()


@pytest.mark.parametrize(
    "stop_after", [LogState.PULLED, LogState.PROCESSED, LogState.UPLOADED]
)
async def test_restart_after_each_state_completes_the_custody_chain(
    tmp_path: Path, docked_suit: DockedSuit, stop_after: LogState
) -> None:
    runtime = open_runtime(gateway_config(tmp_path))
    devices = await async_scan(runtime, docked_suit.backends)
    await async_dock(runtime, devices, docked_suit.backends)
    if stop_after in (LogState.PROCESSED, LogState.UPLOADED):
        process_pending(runtime)
    if stop_after is LogState.UPLOADED:
        upload_pending(runtime)
    assert _states(runtime) == [stop_after, stop_after]
    assert docked_suit.suit.erased_log_ids == []
    runtime.close()

    runtime = await _finish(tmp_path, docked_suit)
    _assert_committed(runtime, docked_suit)
    runtime.close()


async def test_restart_after_release_purges(
    tmp_path: Path, docked_suit: DockedSuit
) -> None:
    config = gateway_config(tmp_path)
    runtime = open_runtime(config)
    # Keep the bytes after release: the restart must still purge them.
    runtime.buffer.purge_released = lambda: []  # type: ignore[method-assign]
    await EdgeAgent(runtime, docked_suit.backends).async_cycle()
    assert _states(runtime) == [LogState.RELEASED, LogState.RELEASED]
    runtime.close()

    runtime = await _finish(tmp_path, docked_suit)
    _assert_committed(runtime, docked_suit)
    runtime.close()


async def test_restart_in_the_middle_of_a_pull_resumes_at_the_durable_offset(
    tmp_path: Path, docked_suit: DockedSuit
) -> None:
    runtime = open_runtime(gateway_config(tmp_path))
    devices = await async_scan(runtime, docked_suit.backends)
    pulling = asyncio.create_task(async_dock(runtime, devices, docked_suit.backends))

    # Stop the agent abruptly once some bytes of the first log are durable.
    async with asyncio.timeout(60):
        while True:
            records = runtime.buffer.logs([LogState.PULLING])
            if records and records[0].durable_offset > 0:
                break
            await asyncio.sleep(0.005)
    pulling.cancel()
    with pytest.raises(asyncio.CancelledError):
        await pulling
    partial = runtime.buffer.logs([LogState.PULLING])
    assert partial and 0 < partial[0].durable_offset < partial[0].size_bytes
    runtime.close()

    runtime = await _finish(tmp_path, docked_suit)
    _assert_committed(runtime, docked_suit)
    runtime.close()
