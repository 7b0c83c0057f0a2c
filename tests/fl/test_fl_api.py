"""The FL routes of the results API: runs for R&D, riders' training consent.

Real parts: a SuperLink on loopback (``--insecure``, no SuperNodes: the run
is accepted and then waits for gateways), a Mosquitto broker that carries
the consent command to a subscriber standing in for the rider's gateway,
and a SQLite catalog.
"""

from __future__ import annotations

import json
import queue
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from fastapi.testclient import TestClient
from fl_helpers import FlowerProcess, start_superlink

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "cloud"))
from cloud_helpers import make_record

from cloud_coordinator.api import (
    ApiServices,
    LocalPresigner,
    create_app,
    derive_link_key,
)
from cloud_coordinator.api.lifecycle import LifecycleServices
from cloud_coordinator.auth import TokenIssuer, TokenSettings, TokenVerifier
from cloud_coordinator.broker import CloudMqttClient
from cloud_coordinator.catalog import SqliteCatalog
from cloud_coordinator.config import BrokerConfig
from cloud_coordinator.crashes.publisher import LazyCommandPublisher
from cloud_coordinator.fl.service import FederatedService
from edge_agent.upload import LocalDirStore
from tests.support.mosquitto import run_mosquitto

pytestmark = pytest.mark.timeout(180)

SECRET = b"fl-api-tests-secret-" + b"k" * 32


@dataclass
class Env:
    client: TestClient
    catalog: SqliteCatalog
    issuer: TokenIssuer
    commands: queue.Queue[dict[str, Any]]
    superlink: FlowerProcess

    def headers(self, subject: str, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.issuer.mint(subject, role, 600)}"}


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    catalog = SqliteCatalog(tmp_path / "catalog.db")
    catalog.migrate()
    superlink, address = start_superlink(tmp_path / "superlink")
    commands: queue.Queue[dict[str, Any]] = queue.Queue()
    with run_mosquitto(tmp_path / "broker") as broker:
        broker_config = BrokerConfig(host="127.0.0.1", port=broker.port)
        gateway = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="gw-7")
        gateway.on_message = lambda _c, _u, m: commands.put(json.loads(m.payload))
        gateway.connect("127.0.0.1", broker.port)
        gateway.subscribe("gateways/gw-7/commands", qos=1)
        gateway.loop_start()
        publisher = LazyCommandPublisher(
            lambda: CloudMqttClient(broker_config, client_id="fl-api-test"), 10.0
        )
        services = ApiServices(
            catalog=catalog,
            store=LocalDirStore(tmp_path / "store"),
            verifier=TokenVerifier(TokenSettings(), SECRET),
            presigner=LocalPresigner(derive_link_key(SECRET)),
            lifecycle=LifecycleServices(broker=broker_config, publisher=publisher),
            federated=FederatedService(
                superlink=address,
                insecure=True,
                root_certificates=None,
                app_dir=None,
                base_config={
                    "catalog": f"sqlite:{tmp_path / 'catalog.db'}",
                    "out-dir": str(tmp_path / "heads"),
                    "quorum-wait-s": 3.0,
                },
            ),
        )
        try:
            yield Env(
                TestClient(create_app(services)),
                catalog,
                TokenIssuer(TokenSettings(), SECRET),
                commands,
                superlink,
            )
        finally:
            gateway.loop_stop()
            gateway.disconnect()
            publisher.close()
            superlink.stop()
            catalog.close()


def test_fl_api_rnd_starts_and_follows_a_run(env: Env) -> None:
    rnd = env.headers("alice", "rnd")
    started = env.client.post(
        "/api/v1/fl/runs",
        json={"rounds": 2, "min_nodes": 3, "strategy": "trimmed-mean"},
        headers=rnd,
    )
    assert started.status_code == 202, started.text
    run = started.json()["run"]
    assert run["requested_by"] == "rnd:alice" and run["flower_run_id"] is not None
    assert run["settings"]["strategy"] == "trimmed-mean"

    detail = env.client.get(f"/api/v1/fl/runs/{run['run_key']}", headers=rnd)
    assert detail.status_code == 200 and detail.json()["run"]["min_nodes"] == 3
    listing = env.client.get("/api/v1/fl/runs", headers=rnd).json()
    assert [item["run_key"] for item in listing] == [run["run_key"]]

    rider = env.headers("r1", "rider")
    assert (
        env.client.post(
            "/api/v1/fl/runs", json={"rounds": 1, "min_nodes": 1}, headers=rider
        ).status_code
        == 403
    )
    assert env.client.get("/api/v1/fl/runs", headers=rider).status_code == 403
    bad = env.client.post(
        "/api/v1/fl/runs",
        json={"rounds": 1, "min_nodes": 1, "settings": {"trim-beta": 0.7}},
        headers=rnd,
    )
    assert bad.status_code == 422 and "trim-beta" in bad.text
    unknown = env.client.post(
        "/api/v1/fl/runs",
        json={"rounds": 1, "min_nodes": 1, "settings": {"epoch": 3}},
        headers=rnd,
    )
    assert unknown.status_code == 422 and "epoch" in unknown.text
    assert env.client.get("/api/v1/fl/runs/nope", headers=rnd).status_code == 404


def test_fl_api_rider_consent_reaches_their_gateway(env: Env) -> None:
    env.catalog.upsert_object(make_record(rider="r1", gateway_id="gw-7"))
    rider = env.headers("r1", "rider")

    answer = env.client.put(
        "/api/v1/riders/r1/training-consent", json={"opted_out": True}, headers=rider
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["opted_out"] and body["published"] and body["gateways"] == ["gw-7"]
    command = env.commands.get(timeout=30)
    assert command["type"] == "training_consent"
    assert command["schema"] == "gateway-command/1"
    assert command["rider_id"] == "r1" and command["opted_out"] is True
    assert command["command_id"] == body["command_id"]

    stored = env.client.get("/api/v1/riders/r1/training-consent", headers=rider)
    assert stored.json()["opted_out"] is True and stored.json()["published"]
    other = env.headers("r2", "rider")
    assert (
        env.client.get("/api/v1/riders/r1/training-consent", headers=other).status_code
        == 404
    )
    assert (
        env.client.get("/api/v1/riders/r2/training-consent", headers=other).status_code
        == 404
    )
