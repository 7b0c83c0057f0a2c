"""Retained status and last will, against a real Mosquitto."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from mqtt_helpers import (
    WAIT_S,
    ChildGateway,
    ClientFactory,
    Observer,
    Received,
    plain_config,
)

from edge_agent.mqtt import MqttPayloadError, parse_status
from tests.support.mosquitto import MosquittoBroker

STATUS_TOPIC = "gateways/gw-1/status"
INFO = {
    "activity": "uploading",
    "model_version": "1.4.2",
    "buffer": {"pulled": 1, "processed": 2, "uploaded": 0},
    "disk_used_bytes": 52_428_800,
    "disk_free_bytes": 1_000_000_000,
    "last_sync_utc": "2026-12-04T10:00:00.000+00:00",
    "held_back": {"training": "gateway not idle"},
}


def _state_is(
    state: str, reason: str | None = None
) -> Callable[[list[Received]], bool]:
    def predicate(messages: list[Received]) -> bool:
        for item in messages:
            if item.topic == STATUS_TOPIC and item.payload:
                document = parse_status(item.topic, item.payload)
                if document["state"] == state and (
                    reason is None or document["reason"] == reason
                ):
                    return True
        return False

    return predicate


def test_status_is_retained_with_agent_fields(
    broker: MosquittoBroker, make_client: ClientFactory
) -> None:
    client = make_client(plain_config(broker.port))
    client.update_status(INFO)
    client.wait_connected(WAIT_S)
    first = Observer(broker.port, [STATUS_TOPIC])
    first.wait_for(_state_is("online"))
    first.close()

    # A client that subscribes later still gets the status: it is retained.
    late = Observer(broker.port, [STATUS_TOPIC])
    messages = late.wait_for(_state_is("online"))
    late.close()
    retained = [item for item in messages if item.retained]
    assert retained, "status was not retained"
    document = parse_status(STATUS_TOPIC, retained[-1].payload)
    assert document["schema"] == "gateway-status/1"
    assert document["gateway_id"] == "gw-1"
    for key, value in INFO.items():
        assert document[key] == value


def test_status_update_while_connected_replaces_retained(
    broker: MosquittoBroker, make_client: ClientFactory
) -> None:
    client = make_client(plain_config(broker.port))
    client.update_status({**INFO, "activity": "idle"})
    client.wait_connected(WAIT_S)
    observer = Observer(broker.port, [STATUS_TOPIC])
    observer.wait_for(_state_is("online"))
    client.update_status({**INFO, "activity": "training", "held_back": {}})

    def training(messages: list[Received]) -> bool:
        return any(
            item.payload
            and parse_status(item.topic, item.payload)["activity"] == "training"
            for item in messages
        )

    observer.wait_for(training)
    observer.close()
    late = Observer(broker.port, [STATUS_TOPIC])
    latest = late.wait_for(lambda messages: len(messages) >= 1)[-1]
    late.close()
    assert parse_status(STATUS_TOPIC, latest.payload)["activity"] == "training"


def test_bad_status_info_is_refused_with_the_field(
    broker: MosquittoBroker, make_client: ClientFactory
) -> None:
    client = make_client(plain_config(broker.port), start=False)
    with pytest.raises(MqttPayloadError, match=r"'disk_used_bytes'.*expected int"):
        client.update_status({**INFO, "disk_used_bytes": "lots"})
    with pytest.raises(MqttPayloadError, match=r"'buffer.pulled'.*count >= 0"):
        client.update_status({**INFO, "buffer": {"pulled": -1}})
    with pytest.raises(MqttPayloadError, match=r"'disk_use'.*unknown status key"):
        client.update_status({"disk_use": 1})


def test_graceful_stop_publishes_offline_shutdown(
    broker: MosquittoBroker, make_client: ClientFactory
) -> None:
    client = make_client(plain_config(broker.port))
    client.update_status(INFO)
    client.wait_connected(WAIT_S)
    observer = Observer(broker.port, [STATUS_TOPIC])
    observer.wait_for(_state_is("online"))
    client.stop()
    observer.wait_for(_state_is("offline", "shutdown"))
    observer.close()
    late = Observer(broker.port, [STATUS_TOPIC])
    latest = late.wait_for(lambda messages: len(messages) >= 1)[-1]
    late.close()
    document = parse_status(STATUS_TOPIC, latest.payload)
    assert (document["state"], document["reason"]) == ("offline", "shutdown")


def test_last_will_marks_a_killed_gateway_offline(
    broker: MosquittoBroker, tmp_path: Path
) -> None:
    observer = Observer(broker.port, [STATUS_TOPIC])
    child = ChildGateway(plain_config(broker.port), tmp_path / "child-outbox.db")
    try:
        child.wait_line("CONNECTED")
        observer.wait_for(_state_is("online"))
    finally:
        child.kill()

    # SIGKILL: no goodbye, the kernel closes the socket, the broker
    # publishes the will.
    observer.wait_for(_state_is("offline", "connection lost"))
    observer.close()
    late = Observer(broker.port, [STATUS_TOPIC])
    latest = late.wait_for(lambda messages: len(messages) >= 1)[-1]
    late.close()
    assert latest.retained
    document = parse_status(STATUS_TOPIC, latest.payload)
    assert (document["state"], document["reason"]) == ("offline", "connection lost")
    # The will carries the status the gateway had when it connected.
    assert document["buffer"] == {"pulled": 2, "uploaded": 5}
    assert document["held_back"] == {"pull": "suit not charging"}
