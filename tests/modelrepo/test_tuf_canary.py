"""Staged roll-out over a real Mosquitto: canaries first, the rest after them."""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from modelrepo_env import MODEL, RepoWorld, make_world, wait_until

from cloud_coordinator.broker import CloudMqttClient
from cloud_coordinator.config import BrokerConfig
from cloud_coordinator.modelrepo import RolloutSettings, ValidationSet
from cloud_coordinator.modelrepo.canary import Verdict, watch_canaries
from edge_agent.modelmgr import (
    ModelManager,
    ReferenceCrashes,
    Stage,
    release_targets,
    write_reference_crashes,
)
from edge_agent.mqtt import GatewayMqttClient, MqttConfig
from models.registry import ModelInfo, shipped_model
from tests.support.mosquitto import run_mosquitto

SHIPPED = shipped_model().version
GATEWAYS = ("gw-a", "gw-b", "gw-c")


def _next(version: str) -> str:
    major, minor, _ = (int(p) for p in version.split("."))
    return f"{major}.{minor + 1}.0"


V1 = _next(SHIPPED)


@dataclass
class Fleet:
    """Gateways with a model manager and a real MQTT link each."""

    managers: dict[str, ModelManager] = field(default_factory=dict)
    links: dict[str, GatewayMqttClient] = field(default_factory=dict)
    checks: dict[str, int] = field(default_factory=dict)
    installed_at: dict[str, float] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def version(self, gateway: str) -> str:
        return self.managers[gateway].active_version


@contextmanager
def running_fleet(
    world: RepoWorld, broker_port: int, tmp_path: Path
) -> Iterator[Fleet]:
    """Start every gateway's manager and MQTT link; stop them at the end."""
    fleet = Fleet()
    for gateway in GATEWAYS:

        def status(gateway: str = gateway) -> None:
            with fleet.lock:
                fleet.checks[gateway] = fleet.checks.get(gateway, 0) + 1
            fleet.links[gateway].update_status(fleet.managers[gateway].status_info())

        def loaded(info: ModelInfo, gateway: str = gateway) -> None:
            fleet.installed_at[gateway] = time.monotonic()

        fleet.managers[gateway] = world.gateway(
            gateway, on_status=status, on_model=loaded, check_interval_s=3600.0
        )
        config = MqttConfig(
            enabled=True,
            host="127.0.0.1",
            port=broker_port,
            gateway_id=gateway,
            tls=False,
            keepalive_s=5,
            connect_timeout_s=5.0,
            backoff_min_s=0.1,
            backoff_max_s=1.0,
        )
        fleet.links[gateway] = GatewayMqttClient(
            config,
            tmp_path / f"outbox-{gateway}.db",
            on_message=fleet.managers[gateway].on_inbound,
        )
    try:
        for gateway in GATEWAYS:
            fleet.links[gateway].start()
            fleet.managers[gateway].start()
        wait_until(lambda: all(fleet.checks.get(g) for g in GATEWAYS), "first checks")
        yield fleet
    finally:
        for gateway in GATEWAYS:
            fleet.managers[gateway].stop()
            fleet.links[gateway].stop(timeout_s=5.0)


def _cloud_client(port: int, client_id: str) -> CloudMqttClient:
    return CloudMqttClient(
        BrokerConfig(host="127.0.0.1", port=port, publish_timeout_s=30.0),
        client_id=client_id,
    )


def test_tuf_canary_rollout_reaches_canaries_first(
    tmp_path: Path, validation: ValidationSet
) -> None:
    world = make_world(
        tmp_path, validation, rollout=RolloutSettings(canary_gateways=("gw-a",))
    )
    with run_mosquitto(tmp_path / "broker") as broker:
        announcer = _cloud_client(broker.port, "cloud-models")
        announcer.connect()
        world.publisher.announcer = announcer
        try:
            with running_fleet(world, broker.port, tmp_path) as fleet:
                checks_before = dict(fleet.checks)
                world.publish_version(V1)

                # The announcement wakes every gateway; only the canary moves.
                wait_until(lambda: fleet.version("gw-a") == V1, "canary installs")
                wait_until(
                    lambda: all(fleet.checks[g] > checks_before[g] for g in GATEWAYS),
                    "every gateway checked after the announcement",
                )
                assert fleet.version("gw-b") == SHIPPED
                assert fleet.version("gw-c") == SHIPPED

                factory = functools.partial(
                    CloudMqttClient,
                    BrokerConfig(host="127.0.0.1", port=broker.port),
                    client_id="cloud-canary-watch",
                )
                verdict = watch_canaries(world.publisher, factory, timeout_s=60.0)
                promoted_at = time.monotonic()

                assert verdict.verdict is Verdict.HEALTHY
                assert verdict.healthy == ("gw-a",)
                plan = world.publisher.current_plan()
                assert plan is not None and plan.stage is Stage.COMPLETE
                wait_until(
                    lambda: all(fleet.version(g) == V1 for g in GATEWAYS),
                    "the rest install after promotion",
                )
                assert fleet.installed_at["gw-a"] < promoted_at
                assert fleet.installed_at["gw-b"] > promoted_at
                assert fleet.installed_at["gw-c"] > promoted_at
        finally:
            announcer.close()


def test_tuf_canary_refusal_halts_the_rollout(
    tmp_path: Path, validation: ValidationSet
) -> None:
    world = make_world(
        tmp_path, validation, rollout=RolloutSettings(canary_gateways=("gw-a",))
    )
    # The candidate ships "reference crashes" that are quiet riding, so the
    # canary's shadow test refuses it.
    quiet = validation.windows[validation.ride_slices()[1]][:6]
    bad_reference = write_reference_crashes(
        ReferenceCrashes(
            np.ascontiguousarray(quiet), np.zeros(len(quiet), np.int32), ("none",)
        )
    )
    with run_mosquitto(tmp_path / "broker") as broker:
        announcer = _cloud_client(broker.port, "cloud-models")
        announcer.connect()
        try:
            with running_fleet(world, broker.port, tmp_path) as fleet:
                world.publish_version(V1)
                world.repo.change_targets(
                    {release_targets(MODEL, V1).reference: bad_reference}
                )
                world.publisher.announcer = announcer
                plan = world.publisher.current_plan()
                assert plan is not None
                world.publisher.announce(plan, 0)

                factory = functools.partial(
                    CloudMqttClient,
                    BrokerConfig(host="127.0.0.1", port=broker.port),
                    client_id="cloud-canary-watch",
                )
                verdict = watch_canaries(world.publisher, factory, timeout_s=60.0)

                assert verdict.verdict is Verdict.FAILED
                assert "shadow test failed" in verdict.failed["gw-a"]
                halted = world.publisher.current_plan()
                assert halted is not None and halted.stage is Stage.HALTED
                checks = dict(fleet.checks)
                wait_until(
                    lambda: all(fleet.checks[g] > checks[g] for g in GATEWAYS),
                    "every gateway checked the halted plan",
                )
                assert all(fleet.version(g) == SHIPPED for g in GATEWAYS)
        finally:
            announcer.close()
