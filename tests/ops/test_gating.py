"""Gating: power from a fake power-supply tree, uplink probes, held-back work."""

from __future__ import annotations

import asyncio
import dataclasses
import socket
from pathlib import Path

import pytest
from ops_helpers import RIDER, SERIAL, InProcessSuit, free_port

from edge_agent.cli.cmd_status import collect_status
from edge_agent.config import (
    BleConfig,
    GatewayConfig,
    GatingConfig,
    StoreConfig,
    SuitIdentity,
)
from edge_agent.custody import LogState
from edge_agent.service.agent import EdgeAgent
from edge_agent.service.gating import (
    REASON_ON_BATTERY,
    REASON_SUIT_NOT_CHARGING,
    async_probe_uplink,
    read_power_state,
    uplink_target,
)
from edge_agent.service.runtime import open_runtime
from edge_agent.service.state import read_agent_state

pytestmark = pytest.mark.timeout(300)


def _supply(root: Path, name: str, **files: str) -> None:
    entry = root / name
    entry.mkdir(parents=True, exist_ok=True)
    for file, text in files.items():
        (entry / file).write_text(text + "\n")


def _config(workdir: Path, **gating: object) -> GatewayConfig:
    return GatewayConfig(
        gateway_id="gw-gating",
        workdir=workdir,
        store=StoreConfig(kind="local", root="store"),
        ble=BleConfig(backend="emulated", scan_timeout_s=0.5),
        gating=dataclasses.replace(GatingConfig(), **gating),  # type: ignore[arg-type]
        suits={SERIAL: SuitIdentity(SERIAL, RIDER)},
    )


MAINS_OFF = {"type": "Mains", "online": "0"}
MAINS_ON = {"type": "Mains", "online": "1"}


@pytest.mark.parametrize(
    ("supplies", "external", "fragment"),
    [
        ({}, True, "no battery"),
        ({"AC": MAINS_ON}, True, "AC"),
        ({"AC": MAINS_OFF, "BAT0": {"type": "Battery", "status": "Discharging"}},
         False, "BAT0"),
        ({"BAT0": {"type": "Battery", "status": "Discharging"}}, False, "BAT0"),
        ({"BAT0": {"type": "Battery", "status": "Charging"}}, True, "charging"),
        ({"BAT0": {"type": "Battery", "status": "Full"}}, True, "full"),
        ({"BAT0": {"type": "Battery", "status": "Not charging"}}, True, "not charging"),
        ({"AC": MAINS_OFF, "BAT0": {"type": "Battery", "status": "Unknown"}},
         False, "BAT0"),
        ({"usb": {"type": "USB", "online": "1"},
          "BAT0": {"type": "Battery", "status": "Discharging"}}, True, "usb"),
        ({"ups": {"type": "UPS", "status": "Discharging"}}, False, "ups"),
        # A wireless mouse's battery says nothing about the gateway's power.
        ({"hidpp_battery_0": {"type": "Battery", "scope": "Device",
                              "status": "Discharging"}}, True, "no battery"),
    ],
)  # fmt: skip
def test_read_power_state_from_a_fake_tree(
    tmp_path: Path, supplies: dict[str, dict[str, str]], external: bool, fragment: str
) -> None:
    root = tmp_path / "power_supply"
    root.mkdir()
    for name, files in supplies.items():
        _supply(root, name, **files)
    state = read_power_state(root)
    assert state.external is external
    assert fragment in state.detail


def test_missing_power_supply_class_counts_as_external(tmp_path: Path) -> None:
    state = read_power_state(tmp_path / "absent")
    assert state.external
    assert "no power-supply information" in state.detail


async def test_uplink_probe_local_listening_and_closed(tmp_path: Path) -> None:
    assert uplink_target(_config(tmp_path)) is None
    local = await async_probe_uplink(None, 1.0)
    assert local.up and local.target is None

    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        up = await async_probe_uplink(("127.0.0.1", port), 5.0)
    assert up.up and up.target == f"127.0.0.1:{port}"

    closed = free_port()
    down = await async_probe_uplink(("127.0.0.1", closed), 5.0)
    assert not down.up
    assert f"127.0.0.1:{closed}" in down.detail


def test_uplink_target_from_store_endpoint_or_probe(tmp_path: Path) -> None:
    s3 = dataclasses.replace(
        _config(tmp_path),
        store=StoreConfig(kind="s3", endpoint_url="http://127.0.0.1:8333"),
    )
    assert uplink_target(s3) == ("127.0.0.1", 8333)
    https = dataclasses.replace(
        s3, store=StoreConfig(kind="s3", endpoint_url="https://s3.example.net")
    )
    assert uplink_target(https) == ("s3.example.net", 443)
    probe = dataclasses.replace(
        https, gating=GatingConfig(uplink_probe="127.0.0.1:9000")
    )
    assert uplink_target(probe) == ("127.0.0.1", 9000)


async def test_on_battery_uploads_wait_then_go_on_mains(
    tmp_path: Path, docked_suit: InProcessSuit
) -> None:
    power = tmp_path / "power_supply"
    _supply(power, "AC", **MAINS_OFF)
    _supply(power, "BAT0", type="Battery", status="Discharging")
    config = _config(tmp_path / "gw", power_supply_root=str(power))
    runtime = open_runtime(config)
    try:
        agent = EdgeAgent(runtime, docked_suit.backends)

        # On battery: pulled and processed, nothing uploaded or released.
        report = await agent.async_cycle()
        assert report.held_back == {"upload": REASON_ON_BATTERY}
        assert [r.state for r in runtime.buffer.logs()] == [LogState.PROCESSED]
        assert docked_suit.suit.erased_log_ids == []
        state = read_agent_state(config.workdir)
        assert state is not None
        assert state["held_back"] == {"upload": REASON_ON_BATTERY}
        assert state["conditions"]["external_power"] is False
        status = await asyncio.to_thread(collect_status, config)
        assert status["held_back"] == {"upload": REASON_ON_BATTERY}
        assert status["upload_gate"] == {"allowed": False, "reason": REASON_ON_BATTERY}
        assert status["logs"]["processed"] == 1

        # Mains back: the next cycle uploads, releases and purges.
        (power / "AC" / "online").write_text("1\n")
        report = await agent.async_cycle()
        assert report.held_back == {}
        assert [r.state for r in runtime.buffer.logs()] == [LogState.PURGED]
        assert len(docked_suit.suit.erased_log_ids) == 1
        state = read_agent_state(config.workdir)
        assert state is not None and state["held_back"] == {}
    finally:
        runtime.close()


async def test_uplink_down_holds_uploads_with_the_reason(
    tmp_path: Path, docked_suit: InProcessSuit
) -> None:
    closed = free_port()
    config = _config(tmp_path, uplink_probe=f"127.0.0.1:{closed}", uplink_timeout_s=2.0)
    runtime = open_runtime(config)
    try:
        report = await EdgeAgent(runtime, docked_suit.backends).async_cycle()
    finally:
        runtime.close()
    reason = report.held_back["upload"]
    assert reason.startswith("uplink down: ")
    assert f"127.0.0.1:{closed}" in reason
    assert report.steps.uploaded == []
    assert docked_suit.suit.erased_log_ids == []


async def test_suit_not_charging_holds_the_pull_unless_the_rule_is_off(
    tmp_path: Path, docked_suit: InProcessSuit
) -> None:
    docked_suit.suit.set_power(40, charging=False)
    runtime = open_runtime(_config(tmp_path / "strict"))
    try:
        report = await EdgeAgent(runtime, docked_suit.backends).async_cycle()
        assert report.held_back == {"pull": REASON_SUIT_NOT_CHARGING}
        assert runtime.buffer.logs() == []
    finally:
        runtime.close()

    runtime = open_runtime(_config(tmp_path / "lenient", pull_requires_charging=False))
    try:
        report = await EdgeAgent(runtime, docked_suit.backends).async_cycle()
        assert report.held_back == {}
        assert [r.state for r in runtime.buffer.logs()] == [LogState.PURGED]
    finally:
        runtime.close()
