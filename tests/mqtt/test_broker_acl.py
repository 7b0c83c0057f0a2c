"""The shipped broker config and ACL, with certificates from the fleet CA.

Every test runs Mosquitto with ``deploy/mosquitto`` (see
``test_broker_support``). A refused publish is seen as the MQTT 5 PUBACK
"Not authorized"; a read the ACL forbids is never delivered, which each
test shows by publishing an allowed sentinel message last: Mosquitto routes
messages one at a time, so a forbidden message would have arrived first.
"""

from __future__ import annotations

import json
import ssl
import time
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from mqtt_helpers import WAIT_S, Observer, Received
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from test_broker_support import FleetPki, deploy_broker_settings, make_fleet_pki

from edge_agent.mqtt.tls import ExpectedNameContext
from tests.support.certs import BROKER_NAME
from tests.support.mosquitto import MosquittoBroker, run_mosquitto

GATEWAYS = ("gw-1", "gw-2")
DEVICES = ("d-1", "d-2")


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> FleetPki:
    return make_fleet_pki(
        tmp_path_factory.mktemp("fleet"), gateways=GATEWAYS, devices=DEVICES
    )


@pytest.fixture
def broker(tmp_path: Path, fleet: FleetPki) -> Iterator[MosquittoBroker]:
    with run_mosquitto(tmp_path / "broker", deploy_broker_settings(fleet)) as running:
        yield running


def _client(
    broker: MosquittoBroker,
    fleet: FleetPki,
    name: str,
    topics: list[str] | None = None,
    client_id: str = "",
) -> Observer:
    return Observer(
        broker.port,
        topics or [],
        client_id=client_id,
        tls=(fleet, fleet.client(name)),  # type: ignore[arg-type]
    )


def _refused(client: Observer, topic: str) -> bool:
    return str(client.wait_puback(client.publish(topic, b"{}"))) == "Not authorized"


def _accepted(client: Observer, topic: str, payload: bytes = b"{}") -> bool:
    return str(client.wait_puback(client.publish(topic, payload))) == "Success"


def _topics(messages: list[Received]) -> list[str]:
    return [item.topic for item in messages]


def test_broker_gateway_publishes_only_under_its_own_prefix(
    broker: MosquittoBroker, fleet: FleetPki
) -> None:
    cloud = _client(
        broker,
        fleet,
        "cloud-coordinator",
        ["$share/ingest/gateways/+/events", "gateways/+/status", "cloud/events"],
    )
    gw1 = _client(broker, fleet, "gw-1")

    for topic in (
        "gateways/gw-2/events",
        "gateways/gw-2/status",
        "gateways/gw-1/commands",
        "gateways/gw-2/commands",
        "cloud/events",
        "models/crash/announce",
        "devices/d-1/data",
    ):
        assert _refused(gw1, topic), topic
    assert _accepted(gw1, "gateways/gw-1/status")
    assert _accepted(gw1, "gateways/gw-1/events")

    received = cloud.wait_for(lambda items: len(items) >= 2)
    gw1.close()
    cloud.close()
    assert _topics(received) == ["gateways/gw-1/status", "gateways/gw-1/events"]


def test_broker_gateway_reads_only_its_commands_and_announcements(
    broker: MosquittoBroker, fleet: FleetPki
) -> None:
    gw1 = _client(
        broker,
        fleet,
        "gw-1",
        [
            "gateways/+/commands",
            "gateways/+/events",
            "gateways/gw-2/status",
            "devices/+/data",
            "cloud/events",
            "models/+/announce",
        ],
    )
    cloud = _client(broker, fleet, "cloud-coordinator")
    gw2 = _client(broker, fleet, "gw-2")
    device = _client(broker, fleet, "d-1")

    assert _accepted(gw2, "gateways/gw-2/events")
    assert _accepted(gw2, "gateways/gw-2/status")
    assert _accepted(device, "devices/d-1/data")
    assert _accepted(cloud, "gateways/gw-2/commands")
    assert _accepted(cloud, "cloud/events")
    assert _accepted(cloud, "models/crash/announce", json.dumps({"v": 2}).encode())
    assert _accepted(cloud, "gateways/gw-1/commands")  # the sentinel, last

    received = gw1.wait_for(lambda items: "gateways/gw-1/commands" in _topics(items))
    for client in (gw1, gw2, device, cloud):
        client.close()
    assert _topics(received) == ["models/crash/announce", "gateways/gw-1/commands"]


def test_broker_device_publishes_only_its_own_data(
    broker: MosquittoBroker, fleet: FleetPki
) -> None:
    cloud = _client(
        broker, fleet, "cloud-coordinator", ["$share/devices/devices/+/data"]
    )
    d1 = _client(broker, fleet, "d-1", ["devices/+/data"])
    d2 = _client(broker, fleet, "d-2")

    for topic in ("devices/d-2/data", "devices/d-1/other", "cloud/events"):
        assert _refused(d1, topic), topic
    assert _accepted(d2, "devices/d-2/data")
    assert _accepted(d1, "devices/d-1/data")

    received = cloud.wait_for(lambda items: len(items) >= 2)
    # d-1 may not read other devices' data; its own topic it may not read
    # either (only write), so it gets nothing at all.
    d1_received = list(d1.messages)
    for client in (cloud, d1, d2):
        client.close()
    assert _topics(received) == ["devices/d-2/data", "devices/d-1/data"]
    assert d1_received == []


def test_broker_cloud_workers_share_the_events(
    broker: MosquittoBroker, fleet: FleetPki
) -> None:
    subscription = ["$share/ingest/gateways/+/events"]
    workers = [
        _client(broker, fleet, "cloud-coordinator", subscription, f"ingest-{n}")
        for n in range(2)
    ]
    gw1 = _client(broker, fleet, "gw-1")
    for number in range(20):
        assert _accepted(gw1, "gateways/gw-1/events", str(number).encode())

    def total(_: list[Received]) -> bool:
        return sum(len(worker.messages) for worker in workers) >= 20

    workers[0].wait_for(total)
    payloads = sorted(
        int(item.payload) for worker in workers for item in worker.messages
    )
    split = [len(worker.messages) for worker in workers]
    for client in (*workers, gw1):
        client.close()
    assert payloads == list(range(20))  # each event to exactly one worker
    assert all(count > 0 for count in split), split


def _tls_connect_error(
    broker: MosquittoBroker, fleet: FleetPki, pair: tuple[Path, Path] | None
) -> str | None:
    """Connect with ``pair`` (or no certificate); return why it failed, if so.

    With TLS 1.3 the broker checks the client certificate after the client
    considers the handshake done, so the verdict is the CONNACK or the
    connection ending before it.
    """
    context = ExpectedNameContext(ssl.PROTOCOL_TLS_CLIENT)
    context.expected_name = BROKER_NAME
    context.load_verify_locations(cafile=str(fleet.ca_file))
    if pair is not None:
        context.load_cert_chain(str(pair[0]), str(pair[1]))
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2, protocol=MQTTProtocolVersion.MQTTv5
    )
    client.tls_set_context(context)
    outcome: list[str | None] = []
    client.on_connect = lambda c, u, f, reason, p: outcome.append(
        str(reason) if reason.is_failure else None
    )
    client.on_disconnect = lambda c, u, f, reason, p: outcome.append(
        f"disconnected: {reason}"
    )
    try:
        client.connect("127.0.0.1", broker.port, keepalive=10)
        deadline = time.monotonic() + WAIT_S
        while not outcome and time.monotonic() < deadline:
            if client.loop(timeout=0.2) != mqtt.MQTT_ERR_SUCCESS:
                outcome.append("connection lost before CONNACK")
    except (ssl.SSLError, OSError) as exc:
        outcome.append(f"{type(exc).__name__}: {exc}")
    finally:
        client.disconnect()
    assert outcome, "no verdict from the broker"
    return outcome[0]


def test_broker_refuses_unknown_and_missing_certificates(
    broker: MosquittoBroker, fleet: FleetPki
) -> None:
    intruder = fleet.intruder
    known = fleet.client("gw-1")
    assert intruder.key_file is not None and known.key_file is not None

    assert _tls_connect_error(broker, fleet, (known.cert_file, known.key_file)) is None
    foreign = _tls_connect_error(broker, fleet, (intruder.cert_file, intruder.key_file))
    missing = _tls_connect_error(broker, fleet, None)

    assert foreign is not None and missing is not None, (foreign, missing)
    log = broker.log_text()
    assert "New client connected" in log  # the known gateway, once
    assert log.count("New client connected") == 1


def test_broker_refuses_a_certificate_of_the_fleet_ca_used_elsewhere(
    broker: MosquittoBroker, fleet: FleetPki
) -> None:
    # A trusted certificate acts only as the name printed in it: gw-2's
    # certificate cannot write under gw-1 even if the client says it is gw-1.
    impostor = _client(broker, fleet, "gw-2", client_id="gw-1")
    refused = _refused(impostor, "gateways/gw-1/events")
    impostor.close()
    assert refused
