"""The agent on a flaky uplink to both SeaweedFS and Mosquitto.

Two loopback proxies sit between the agent and the object store and between
the agent and the broker; a fault script stalls, resets, throttles and
refuses connections on both while the agent pulls, processes and uploads.
Afterwards every log is in the store exactly once with matching SHA-256, no
multipart upload is left open, and after de-duplication by id every event
arrived exactly once. ``FLAKY_NETWORK_S`` lengthens the fault script
(``make flaky-test`` runs it for three minutes).
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from agent_helpers import SERIAL, DockedSuit, gateway_config

from edge_agent.config import StoreConfig
from edge_agent.custody import LogState
from edge_agent.service.agent import EdgeAgent
from edge_agent.service.dock import BleBackends
from edge_agent.service.runtime import open_runtime
from firmware_bridge.ble.bleak_bumble import GatewayRadio
from firmware_bridge.ble.suit import EmulatedSuit, VirtualAir
from firmware_bridge.synth import RideSpec, ride_log_path, write_ride
from tests.mqtt.mqtt_helpers import Observer, plain_config
from tests.support.flaky_proxy import (
    FaultStep,
    pause,
    refuse_for,
    reset,
    run_flaky_proxy,
    stall,
    throttle,
)
from tests.support.mosquitto import run_mosquitto
from tests.support.seaweed import SeaweedS3, seaweed_s3

__all__ = ["seaweed_s3"]

SCRIPT_S = float(os.environ.get("FLAKY_NETWORK_S", "45"))
LOGS = 6
# Time the agent gets after the faults end to deliver everything.
SETTLE_S = 120.0


def _script(total_s: float) -> list[FaultStep]:
    """Repeat a one-round fault pattern (about 22 s) until ``total_s``."""
    round_ = [
        stall(6),
        pause(1),
        reset(),
        throttle(20_000, 5),
        pause(1),
        refuse_for(3),
        stall(2, "down"),
        reset(),
        pause(2),
    ]
    steps: list[FaultStep] = []
    while sum(step.duration_s for step in steps) < total_s:
        steps += round_
    return steps


@pytest.fixture
async def many_logs_suit(tmp_path: Path) -> AsyncIterator[DockedSuit]:
    folder = tmp_path / "suit"
    folder.mkdir()
    paths = []
    for number in range(LOGS):
        spec = RideSpec(
            seed=8100 + number,
            scenario="city",
            riding_s=40.0,
            sample_rate_hz=200.0,
            crash="lowside" if number == 2 else None,
            crash_at_s=30.0 if number == 2 else None,
            walk_before_s=5.0,
            walk_after_s=0.0 if number == 2 else 5.0,
            suit_serial=SERIAL,
        )
        path = ride_log_path(spec, folder)
        write_ride(spec, path)
        paths.append(path)
    air = VirtualAir()
    suit = EmulatedSuit(SERIAL, paths, charging=True)
    await suit.async_start(air)
    radio = await GatewayRadio.async_create(air)
    try:
        yield DockedSuit(
            suit, BleBackends(radio.scanner_backend, radio.client_backend), paths
        )
    finally:
        await radio.async_close()
        await suit.async_stop()


@pytest.mark.slow
@pytest.mark.timeout(SCRIPT_S + SETTLE_S + 120)
async def test_everything_arrives_once_through_a_flaky_uplink(
    tmp_path: Path, seaweed_s3: SeaweedS3, many_logs_suit: DockedSuit
) -> None:
    s3, docked = seaweed_s3, many_logs_suit
    buckets = {kind: s3.new_bucket(kind) for kind in ("raw", "analytics", "crash")}
    with (
        run_mosquitto(tmp_path / "broker") as broker,
        run_flaky_proxy(broker.port) as mqtt_proxy,
        run_flaky_proxy(int(s3.endpoint_url.rsplit(":", 1)[1])) as s3_proxy,
    ):
        observer = Observer(broker.port, ["gateways/+/events"])
        config = dataclasses.replace(
            gateway_config(tmp_path / "gw"),
            store=StoreConfig(
                kind="s3",
                endpoint_url=f"http://127.0.0.1:{s3_proxy.port}",
                region=s3.region,
                access_key_id=s3.access_key_id,
                secret_access_key=s3.secret_access_key,
                raw_bucket=buckets["raw"],
                analytics_bucket=buckets["analytics"],
                crash_bucket=buckets["crash"],
            ),
            mqtt=plain_config(mqtt_proxy.port, gateway_id="gw-test"),
        )
        script = _script(SCRIPT_S)
        faults = [
            s3_proxy.play_in_background(script),
            mqtt_proxy.play_in_background(script),
        ]
        runtime = open_runtime(config)
        agent = EdgeAgent(runtime, docked.backends)
        try:
            cycles = 0
            while cycles < 400:
                await agent.async_cycle()
                cycles += 1
                done = all(r.state is LogState.PURGED for r in runtime.buffer.logs())
                if (
                    done
                    and len(runtime.buffer.logs()) == LOGS
                    and all(f.done for f in faults)
                ):
                    break
            for fault in faults:
                fault.join(SCRIPT_S + 30)
            assert runtime.mqtt is not None
            assert runtime.mqtt.wait_delivered(SETTLE_S)
            records = runtime.buffer.logs()
        finally:
            runtime.close()
        observer.wait_for(lambda messages: len(messages) >= LOGS + 1)
        events = observer.event_documents()
        observer.close()
        stats = (s3_proxy.stats, mqtt_proxy.stats)

    assert len(records) == LOGS and all(r.state is LogState.PURGED for r in records)
    assert len(docked.suit.erased_log_ids) == LOGS
    client = s3.client()
    for kind, bucket in buckets.items():
        assert not client.list_multipart_uploads(Bucket=bucket).get("Uploads")
        keys = [
            o["Key"] for o in client.list_objects_v2(Bucket=bucket).get("Contents", [])
        ]
        expected = 1 if kind == "crash" else LOGS
        assert len(keys) == expected, (kind, keys)
        for key in keys:
            obj = client.get_object(Bucket=bucket, Key=key)
            assert (
                hashlib.sha256(obj["Body"].read()).hexdigest()
                == obj["Metadata"]["sha256"]
            )
    unique = {event["event_id"]: event for event in events}
    counts = Counter((e["type"], e["log_id"]) for e in unique.values())
    assert all(count == 1 for count in counts.values())
    assert sum(1 for kind, _ in counts if kind == "log_uploaded") == LOGS
    assert sum(1 for kind, _ in counts if kind == "crash_detected") == 1
    print(
        f"cycles {cycles}; events {len(events)} received, {len(unique)} unique; "
        f"proxy stats {stats}"
    )
