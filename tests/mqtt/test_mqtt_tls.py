"""TLS with client certificates, the expected server name, and the ACL."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from mqtt_helpers import (
    WAIT_S,
    ClientFactory,
    Observer,
    has_events,
    make_event,
    plain_config,
    tls_config,
    wait_until,
)

from edge_agent.mqtt import (
    BrokerIdentityError,
    BrokerUnavailableError,
    parse_status,
)
from tests.support.certs import BROKER_NAME, WRONG_BROKER_NAME, TestPki
from tests.support.mosquitto import MosquittoBroker


def _cloud(broker: MosquittoBroker, pki: TestPki, topics: list[str]) -> Observer:
    return Observer(broker.port, topics, tls=(pki, pki.client("cloud-coordinator")))


def test_tls_with_client_certificate_reached_by_ip(
    tls_broker: MosquittoBroker, pki: TestPki, make_client: ClientFactory
) -> None:
    cloud = _cloud(tls_broker, pki, ["gateways/+/status", "gateways/+/events"])
    commands: list[object] = []
    client = make_client(tls_config(tls_broker.port, pki), on_message=commands.append)
    client.update_status({"activity": "idle", "buffer": {}, "disk_used_bytes": 0})
    client.wait_connected(WAIT_S)
    client.enqueue(make_event(1))
    cloud.wait_for(has_events(1))
    assert client.wait_delivered(WAIT_S)

    # The ACL lets the cloud command this gateway and the gateway read it.
    cloud.publish(
        "gateways/gw-1/commands",
        json.dumps(
            {
                "schema": "gateway-command/1",
                "command_id": "0b7e3c4a-2a47-4df5-9a0c-1d3c9a7e5b21",
                "type": "crash_verdict",
                "rider_id": "rider-1",
                "suit_id": "SUIT-1",
                "log_id": "log-00001",
                "verdict": "confirmed",
                "t_offset_s": 812.5,
                "issued_at": "2026-12-04T10:00:00+00:00",
            }
        ),
    )
    wait_until(lambda: bool(commands), "command at the gateway")
    status = cloud.wait_for(lambda messages: bool(messages))[0]
    cloud.close()
    assert parse_status(status.topic, status.payload)["state"] == "online"
    assert len(commands) == 1


def test_certificate_for_another_name_is_refused_clearly(
    wrong_name_broker: MosquittoBroker, pki: TestPki, make_client: ClientFactory
) -> None:
    client = make_client(tls_config(wrong_name_broker.port, pki))
    with pytest.raises(BrokerIdentityError) as caught:
        client.wait_connected(WAIT_S, fail_fast=True)
    message = str(caught.value)
    assert f"127.0.0.1:{wrong_name_broker.port}" in message
    assert f"expected name {BROKER_NAME!r}" in message
    assert f"DNS:{WRONG_BROKER_NAME}" in message
    assert "not downgraded" in message
    assert client.stats.connections == 0
    assert "New client connected" not in wrong_name_broker.log_text()


def test_ip_without_expected_name_is_not_accepted(
    tls_broker: MosquittoBroker, pki: TestPki, make_client: ClientFactory
) -> None:
    config = replace(tls_config(tls_broker.port, pki), tls_server_name=None)
    client = make_client(config)
    with pytest.raises(BrokerIdentityError, match=r"expected name '127\.0\.0\.1'"):
        client.wait_connected(WAIT_S, fail_fast=True)
    assert client.stats.connections == 0


def test_plain_client_is_refused_by_the_tls_listener(
    tls_broker: MosquittoBroker, make_client: ClientFactory
) -> None:
    client = make_client(plain_config(tls_broker.port, connect_timeout_s=2.0))
    with pytest.raises(BrokerUnavailableError, match=r"set mqtt.tls = true"):
        client.wait_connected(WAIT_S, fail_fast=True)
    assert client.stats.connections == 0


@pytest.mark.parametrize("credentials", ["none", "intruder"])
def test_client_without_a_trusted_certificate_is_refused(
    tls_broker: MosquittoBroker,
    pki: TestPki,
    make_client: ClientFactory,
    credentials: str,
) -> None:
    config = tls_config(tls_broker.port, pki, connect_timeout_s=2.0)
    if credentials == "none":
        config = replace(config, cert_file=None, key_file=None)
    else:
        config = replace(
            config,
            cert_file=str(pki.intruder.cert_file),
            key_file=str(pki.intruder.key_file),
        )
    client = make_client(config)
    with pytest.raises(BrokerUnavailableError, match=r"client certificate"):
        client.wait_connected(WAIT_S, fail_fast=True)
    assert client.stats.connections == 0


def test_acl_keeps_a_gateway_inside_its_own_prefix(
    tls_broker: MosquittoBroker, pki: TestPki
) -> None:
    cloud = _cloud(tls_broker, pki, ["gateways/+/events"])
    gw1 = Observer(
        tls_broker.port,
        ["gateways/gw-2/commands", "gateways/gw-1/commands"],
        tls=(pki, pki.client("gw-1")),
    )

    # Writing under another gateway's prefix is refused (MQTT 5 PUBACK).
    forged = gw1.publish("gateways/gw-2/events", json.dumps({"forged": True}))
    assert str(gw1.wait_puback(forged)) == "Not authorized"
    own = make_event(1)
    gw1.wait_puback(gw1.publish("gateways/gw-1/events", own.to_payload()))
    # Messages of one connection arrive in order: the forged one would have
    # come before the gateway's own event.
    messages = cloud.wait_for(has_events(1))
    assert [item.topic for item in messages] == ["gateways/gw-1/events"]

    # Reading another gateway's commands: Mosquitto 2.0 grants the
    # subscription but never delivers what the ACL does not let it read.
    cloud.wait_puback(cloud.publish("gateways/gw-2/commands", b"for gw-2"))
    cloud.wait_puback(cloud.publish("gateways/gw-1/commands", b"for gw-1"))
    received = gw1.wait_for(lambda items: bool(items))
    gw1.close()
    cloud.close()
    assert [(item.topic, item.payload) for item in received] == [
        ("gateways/gw-1/commands", b"for gw-1")
    ]


def test_gateway_id_not_matching_its_certificate_loses_nothing(
    tls_broker: MosquittoBroker, pki: TestPki, make_client: ClientFactory
) -> None:
    # gw-2's id with gw-1's certificate: the ACL refuses every publish.
    pair = pki.client("gw-1")
    config = replace(
        tls_config(tls_broker.port, pki, gateway_id="gw-2"),
        cert_file=str(pair.cert_file),
        key_file=str(pair.key_file),
    )
    client = make_client(config)
    event = make_event(1, "gw-2")
    client.enqueue(event)
    wait_until(lambda: client.stats.events_refused >= 1, "PUBACK refusal")

    (entry,) = client.outbox.entries("pending")
    assert entry.event_id == event.event_id
    assert entry.refusals == 1
    assert entry.last_error is not None and "Not authorized" in entry.last_error
    assert client.outbox.counts()["delivered"] == 0
