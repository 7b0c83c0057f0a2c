"""The agent's state file and its MQTT status info."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from ops_helpers import RIDER, SERIAL, InProcessSuit

from edge_agent.config import BleConfig, GatewayConfig, StoreConfig, SuitIdentity
from edge_agent.mqtt.status import check_status_info
from edge_agent.service.agent import CycleReport, EdgeAgent
from edge_agent.service.runtime import open_runtime
from edge_agent.service.state import (
    STATE_FILE,
    STATE_REFRESH_S,
    StateFile,
    read_agent_state,
)

pytestmark = pytest.mark.timeout(120)


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now_s = 50.0

    def __call__(self) -> float:
        return self.now_s


def test_state_file_skips_unchanged_writes_until_the_refresh(tmp_path: Path) -> None:
    clock = FakeClock()
    state = StateFile(tmp_path, clock=clock)
    assert state.write({"activity": "idle", "cycles": 1})
    assert not state.write({"activity": "idle", "cycles": 2})
    assert state.write({"activity": "stopped", "cycles": 2})
    clock.now_s += STATE_REFRESH_S + 1
    assert state.write({"activity": "stopped", "cycles": 3})
    document = read_agent_state(tmp_path)
    assert document is not None and document["cycles"] == 3
    assert [p.name for p in tmp_path.iterdir()] == [STATE_FILE]


def test_a_foreign_state_file_is_named_in_the_error(tmp_path: Path) -> None:
    (tmp_path / STATE_FILE).write_text(json.dumps({"schema": "other/1"}))
    with pytest.raises(ValueError, match=STATE_FILE):
        read_agent_state(tmp_path)
    (tmp_path / STATE_FILE).write_text("{")
    with pytest.raises(ValueError, match="not JSON"):
        read_agent_state(tmp_path)


def _broken_listener(report: CycleReport) -> None:
    raise RuntimeError(f"listener broken after cycle with {report.held_back}")


async def test_status_info_meets_the_mqtt_status_schema_and_listeners_run(
    tmp_path: Path, docked_suit: InProcessSuit
) -> None:
    config = GatewayConfig(
        gateway_id="gw-state",
        workdir=tmp_path,
        store=StoreConfig(kind="local", root="store"),
        ble=BleConfig(backend="emulated", scan_timeout_s=0.5),
        suits={SERIAL: SuitIdentity(SERIAL, RIDER)},
    )
    runtime = open_runtime(config)
    try:
        agent = EdgeAgent(runtime, docked_suit.backends)
        seen: list[CycleReport] = []
        agent.cycle_listeners.append(seen.append)
        agent.cycle_listeners.append(_broken_listener)  # logged, not raised
        report = await agent.async_cycle()
        info = agent.status_info()
    finally:
        runtime.close()
    assert seen == [report]
    checked = check_status_info(info, "gateways/gw-state/status")
    assert checked["buffer"]["purged"] == 1
    assert checked["held_back"] == {}
    assert checked["last_sync_utc"] is not None
    assert checked["model_version"] == agent.model["version"]  # type: ignore[index]
