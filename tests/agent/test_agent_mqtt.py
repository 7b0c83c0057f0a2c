"""The agent announces committed uploads and crashes on MQTT (real Mosquitto)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from agent_helpers import DockedSuit, gateway_config

from edge_agent.service.agent import EdgeAgent
from edge_agent.service.runtime import open_runtime
from tests.mqtt.mqtt_helpers import Observer, plain_config
from tests.support.mosquitto import run_mosquitto

pytestmark = pytest.mark.timeout(300)


async def test_cycle_publishes_one_event_per_upload_and_crash(
    tmp_path: Path, docked_suit: DockedSuit
) -> None:
    with run_mosquitto(tmp_path / "broker") as broker:
        observer = Observer(broker.port, ["gateways/+/events"])
        config = dataclasses.replace(
            gateway_config(tmp_path / "gw"),
            mqtt=plain_config(broker.port, gateway_id="gw-test"),
        )
        runtime = open_runtime(config)
        try:
            await EdgeAgent(runtime, docked_suit.backends).async_cycle()
            assert runtime.mqtt is not None
            assert runtime.mqtt.wait_delivered(30.0)
            records = runtime.buffer.logs()
        finally:
            runtime.close()
        observer.wait_for(lambda messages: len(messages) >= 3)
        events = observer.event_documents()
        observer.close()

    by_type: dict[str, list[str]] = {}
    for event in events:
        by_type.setdefault(event["type"], []).append(event["log_id"])
    assert sorted(by_type["log_uploaded"]) == sorted(r.log_id for r in records)
    crashed = [r.log_id for r in records if r.crash_detected]
    assert by_type["crash_detected"] == crashed and len(crashed) == 1
    for event in events:
        record = next(r for r in records if r.log_id == event["log_id"])
        assert event["sha256"] == record.sha256_hex
        assert event["suit_id"] == record.suit_serial
        assert event["object_keys"]["raw_csv"].startswith("raw/")
