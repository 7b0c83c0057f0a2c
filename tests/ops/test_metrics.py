"""Prometheus metrics: scraped from the loopback endpoint after real cycles."""

from __future__ import annotations

import asyncio
import re
import urllib.request
from pathlib import Path

import pytest
from ops_helpers import RIDER, SERIAL, InProcessSuit

from edge_agent.config import BleConfig, GatewayConfig, StoreConfig, SuitIdentity
from edge_agent.custody import LogState
from edge_agent.service.agent import EdgeAgent
from edge_agent.service.dock import BleBackends
from edge_agent.service.metrics import METRICS_ADDRESS, AgentMetrics
from edge_agent.service.runtime import open_runtime
from firmware_bridge.ble.bleak_bumble import GatewayRadio
from firmware_bridge.ble.suit import EmulatedSuit, VirtualAir
from models.registry import shipped_model

pytestmark = pytest.mark.timeout(300)


def _scrape(port: int) -> dict[str, float]:
    url = f"http://127.0.0.1:{port}/metrics"
    with urllib.request.urlopen(url, timeout=10) as response:
        text = response.read().decode()
    samples: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            samples[name] = float(value)
    return samples


def _config(workdir: Path) -> GatewayConfig:
    return GatewayConfig(
        gateway_id="gw-metrics",
        workdir=workdir,
        store=StoreConfig(kind="local", root="store"),
        ble=BleConfig(backend="emulated", scan_timeout_s=0.5),
        suits={SERIAL: SuitIdentity(SERIAL, RIDER)},
    )


async def _stop_mid_pull(agent: EdgeAgent) -> tuple[asyncio.Event, asyncio.Task[None]]:
    """Set a stop event once part of a log is durable (as SIGTERM would)."""
    stop = asyncio.Event()

    async def watch() -> None:
        while True:
            pulling = agent.runtime.buffer.logs([LogState.PULLING])
            if pulling and pulling[0].durable_offset > 0:
                stop.set()
                return
            await asyncio.sleep(0.005)

    return stop, asyncio.create_task(watch())


async def test_metrics_after_a_stopped_and_a_resumed_cycle(
    tmp_path: Path, docked_large_suit: InProcessSuit, small_log: Path, large_log: Path
) -> None:
    metrics = AgentMetrics()
    port = metrics.serve(0)
    runtime = open_runtime(_config(tmp_path))
    try:
        agent = EdgeAgent(runtime, docked_large_suit.backends, metrics=metrics)
        assert metrics.address == (METRICS_ADDRESS, port)

        # Cycle 1 is stopped in the middle of a pull; cycle 2 resumes it.
        stop, watcher = await _stop_mid_pull(agent)
        first = await agent.async_cycle(stop)
        await asyncio.wait_for(watcher, timeout=1)
        assert first.interrupted and first.dock.interrupted
        partial = runtime.buffer.logs([LogState.PULLING])[0]
        assert 0 < partial.durable_offset < partial.size_bytes
        second = await agent.async_cycle()
        assert second.dock.resumed == [partial.log_id]

        samples = await asyncio.to_thread(_scrape, port)
        store_bytes = sum(
            p.stat().st_size
            for p in runtime.config.store_root.rglob("*")
            if p.is_file() and not p.name.startswith(".")
        )
    finally:
        runtime.close()
        metrics.close()

    sizes = small_log.stat().st_size + large_log.stat().st_size
    pulled = first.dock.bytes_pulled + second.dock.bytes_pulled
    assert samples["edge_agent_pulled_bytes_total"] == pulled
    assert pulled >= sizes - partial.durable_offset
    assert samples["edge_agent_pull_resumes_total"] == 1
    assert samples["edge_agent_cycles_total"] == 2
    assert samples['edge_agent_logs_total{step="pulled"}'] == 2
    assert samples['edge_agent_logs_total{step="uploaded"}'] == 2
    assert samples['edge_agent_buffer_logs{state="purged"}'] == 2
    assert samples['edge_agent_buffer_logs{state="pulling"}'] == 0
    assert samples["edge_agent_processing_seconds_count"] == 2
    assert samples["edge_agent_processing_seconds_sum"] > 0
    assert samples["edge_agent_quarantined_total"] == 0
    assert 0 < samples["edge_agent_uploaded_bytes_total"] <= store_bytes
    assert samples["edge_agent_external_power"] == 1
    assert samples['edge_agent_work_held_back{work="upload"}'] == 0
    assert samples["edge_agent_last_sync_timestamp_seconds"] > 0
    version = shipped_model().metadata.version
    model = [name for name in samples if name.startswith("edge_agent_model_info{")]
    assert len(model) == 1 and f'version="{version}"' in model[0]


async def test_metrics_count_quarantined_input(tmp_path: Path, small_log: Path) -> None:
    bad = tmp_path / "suit" / "damaged.slog"
    bad.parent.mkdir()
    bad.write_bytes(b"not a suit log" * 1000)
    air = VirtualAir()
    suit = EmulatedSuit(SERIAL, [small_log, bad], charging=True)
    await suit.async_start(air)
    radio = await GatewayRadio.async_create(air)
    metrics = AgentMetrics()
    port = metrics.serve(0)
    runtime = open_runtime(_config(tmp_path / "gw"))
    try:
        backends = BleBackends(radio.scanner_backend, radio.client_backend)
        report = await EdgeAgent(runtime, backends, metrics=metrics).async_cycle()
        samples = await asyncio.to_thread(_scrape, port)
    finally:
        runtime.close()
        metrics.close()
        await radio.async_close()
        await suit.async_stop()
    assert len(report.quarantined) == 1
    assert samples["edge_agent_quarantined_total"] == 1
    assert samples["edge_agent_quarantine_items"] >= 1
    assert samples['edge_agent_logs_total{step="uploaded"}'] == 1
    assert re.search(r"damaged|magic", next(iter(report.quarantined.values())))
