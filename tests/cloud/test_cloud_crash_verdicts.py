"""Crash verdicts to the gateway over a real TLS Mosquitto, and crash release."""

from __future__ import annotations

import dataclasses
import queue
from collections.abc import Iterator
from pathlib import Path

import pytest
from cloud_api_env import make_api_env
from cloud_broker_env import (
    cloud_broker_config,
    make_test_pki,
    raw_client,
    tls_broker,
)
from cloud_helpers import ManualClock
from cloud_world import World, build_world

from cloud_coordinator.api.lifecycle import LifecycleServices
from cloud_coordinator.broker import CloudMqttClient
from cloud_coordinator.catalog import AuditAction, Catalog, ObjectKind
from edge_agent.upload import LocalDirStore
from tests.support.certs import TestPki
from tests.support.mosquitto import MosquittoBroker


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> TestPki:
    return make_test_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def broker(
    tmp_path_factory: pytest.TempPathFactory, pki: TestPki
) -> Iterator[MosquittoBroker]:
    with tls_broker(tmp_path_factory.mktemp("mosquitto"), pki) as running:
        yield running


def _world(catalog: Catalog, store: LocalDirStore, clock: ManualClock) -> World:
    world = build_world(make_api_env(catalog, store, clock))
    # Ingest learnt from the event topic that gw-1 uploaded r1's crash log.
    for item in world.log("r1", 1).objects.values():
        catalog.upsert_object(dataclasses.replace(item.as_record(), gateway_id="gw-1"))
    return world


def _connect(
    world: World, publisher: CloudMqttClient | None, broker_cfg: object
) -> None:
    env = world.env
    services = env.app.state.services
    env.app.state.services = dataclasses.replace(
        services,
        lifecycle=LifecycleServices(
            broker=broker_cfg,  # type: ignore[arg-type]
            publisher=publisher,
        ),
    )


def test_confirmed_crash_arrives_on_the_gateways_commands_topic(
    any_catalog: Catalog,
    local_store: LocalDirStore,
    clock: ManualClock,
    broker: MosquittoBroker,
    pki: TestPki,
    tmp_path: Path,
) -> None:
    world = _world(any_catalog, local_store, clock)
    env = world.env
    config = cloud_broker_config(broker, pki)
    log = world.log("r1", 1)
    with (
        CloudMqttClient(config, client_id="cloud-api-test") as publisher,
        raw_client(broker, pki, "gw-1", subscribe="gateways/gw-1/commands") as gw1,
        raw_client(broker, pki, "gw-2", subscribe="gateways/gw-2/commands") as gw2,
    ):
        publisher.connect()
        _connect(world, publisher, config)
        response = env.client.put(
            f"/api/v1/logs/{log.log}/crash-verdict",
            json={"verdict": "confirmed", "t_offset_s": 12.5},
            headers=env.headers("rnd-1", "rnd"),
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["published"] is True and body["gateway_id"] == "gw-1"

        topic, command = gw1.next_message()
        assert topic == "gateways/gw-1/commands"
        assert command == {
            "schema": "gateway-command/1",
            "command_id": body["command_id"],
            "type": "crash_verdict",
            "rider_id": "r1",
            "suit_id": log.suit,
            "log_id": log.log,
            "verdict": "confirmed",
            "t_offset_s": 12.5,
            "issued_at": command["issued_at"],
        }
        assert command["issued_at"].startswith(body["issued_utc"][:19])
        # A second verdict changes the label; the other gateway hears nothing.
        rejected = env.client.put(
            f"/api/v1/logs/{log.log}/crash-verdict",
            json={"verdict": "rejected"},
            headers=env.headers("admin-1", "admin"),
        ).json()
        _, second = gw1.next_message()
        assert second["verdict"] == "rejected"
        assert second["command_id"] == rejected["command_id"] != body["command_id"]
        with pytest.raises(queue.Empty):
            gw2.messages.get(timeout=1.0)

    stored = env.get(f"/api/v1/logs/{log.log}/crash-verdict", "rnd-1", "rnd").json()
    assert stored["verdict"] == "rejected" and stored["published_utc"] is not None
    label = any_catalog.get_crash_verdict("r1", log.suit, log.log)
    assert label is not None and label.actor == "admin:admin-1"
    audit = any_catalog.list_audit(rider_id="r1", limit=10).items
    assert [e.action for e in audit] == [AuditAction.CRASH_VERDICT] * 2


def test_unreachable_broker_stores_the_verdict_unsent(
    sqlite_catalog: Catalog,
    local_store: LocalDirStore,
    clock: ManualClock,
    broker: MosquittoBroker,
    pki: TestPki,
) -> None:
    world = _world(sqlite_catalog, local_store, clock)
    config = dataclasses.replace(
        cloud_broker_config(broker, pki), port=1, publish_timeout_s=0.5
    )
    _connect(world, CloudMqttClient(config, client_id="never-connected"), config)
    log = world.log("r1", 1)
    response = world.env.client.put(
        f"/api/v1/logs/{log.log}/crash-verdict",
        json={"verdict": "confirmed"},
        headers=world.env.headers("rnd-1", "rnd"),
    )
    assert response.status_code == 200
    body = response.json()
    assert body["published"] is False and "not connected" in body["publish_error"]
    assert sqlite_catalog.get_crash_verdict("r1", log.suit, log.log) is not None


@pytest.mark.parametrize(
    ("subject", "role", "rider", "index", "status"),
    [
        ("r1", "rider", "r1", 1, 403),  # own crash: riders do not judge
        ("r2", "rider", "r1", 1, 404),
        ("t1", "technician", "r1", 1, 404),  # r1 is not theirs
        ("t2", "technician", "p2", 0, 200),  # p2 is theirs
        ("rnd-1", "rnd", "r1", 0, 404),  # a log without a crash
    ],
)
def test_verdict_access(
    sqlite_catalog: Catalog,
    local_store: LocalDirStore,
    clock: ManualClock,
    subject: str,
    role: str,
    rider: str,
    index: int,
    status: int,
) -> None:
    world = _world(sqlite_catalog, local_store, clock)
    log = world.log(rider, index)
    response = world.env.client.put(
        f"/api/v1/logs/{log.log}/crash-verdict",
        json={"verdict": "confirmed"},
        headers=world.env.headers(subject, role),
    )
    assert response.status_code == status, response.text
    if status == 200:
        # No gateway known for p2's log and no broker: stored, not sent.
        assert response.json()["published"] is False


def test_bad_verdicts_are_refused(
    sqlite_catalog: Catalog, local_store: LocalDirStore, clock: ManualClock
) -> None:
    world = _world(sqlite_catalog, local_store, clock)
    log = world.log("r1", 1)
    for body in ({"verdict": "maybe"}, {"verdict": "confirmed", "t_offset_s": -1}):
        response = world.env.client.put(
            f"/api/v1/logs/{log.log}/crash-verdict",
            json=body,
            headers=world.env.headers("rnd-1", "rnd"),
        )
        assert response.status_code == 422
    # A huge rejected value is named, not echoed back whole.
    response = world.env.client.put(
        f"/api/v1/logs/{log.log}/crash-verdict",
        json={"verdict": "x" * 1_000_000},
        headers=world.env.headers("rnd-1", "rnd"),
    )
    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert error["loc"] == ["body", "verdict"] and error["msg"]
    assert error["input"].endswith("... (1000000 characters)")
    assert len(response.content) < 1000
    assert (
        world.env.get(
            f"/api/v1/logs/{log.log}/crash-verdict", "rnd-1", "rnd"
        ).status_code
        == 404
    )


def test_release_deletes_crash_objects_only(
    any_catalog: Catalog, local_store: LocalDirStore, clock: ManualClock
) -> None:
    world = _world(any_catalog, local_store, clock)
    env = world.env
    log = world.log("r1", 1)
    crash = log.objects["crash_raw_csv"]
    assert (
        env.client.post(
            f"/api/v1/logs/{log.log}/crash-release", headers=env.headers("r1", "rider")
        ).status_code
        == 403
    )

    response = env.client.post(
        f"/api/v1/logs/{log.log}/crash-release", headers=env.headers("rnd-1", "rnd")
    )
    assert response.status_code == 200, response.text
    assert response.json()["deleted"] == [f"{crash.bucket}/{crash.key}"]
    assert local_store.head_object(crash.bucket, crash.key) is None
    assert any_catalog.get_object(crash.object_id) is None
    for name in ("raw_csv", "analytics"):
        item = any_catalog.get_object(log.objects[name].object_id)
        assert item is not None and item.retention_until is None
    kinds = {o.kind for o in world.log("p2").objects.values()}
    assert ObjectKind.CRASH in kinds
    p2_crash = world.log("p2").objects["crash_raw_csv"]
    assert local_store.head_object(p2_crash.bucket, p2_crash.key) is not None
    audit = any_catalog.list_audit(rider_id="r1", limit=10).items
    assert [(e.action, e.key) for e in audit] == [
        (AuditAction.CRASH_RELEASE, crash.key)
    ]
    again = env.client.post(
        f"/api/v1/logs/{log.log}/crash-release", headers=env.headers("rnd-1", "rnd")
    )
    assert again.status_code == 200 and again.json()["deleted"] == []
