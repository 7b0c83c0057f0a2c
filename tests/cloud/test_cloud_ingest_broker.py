"""The cloud MQTT client against a real TLS Mosquitto with the shipped ACL."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cloud_broker_env import (
    cloud_broker_config,
    make_test_pki,
    raw_client,
    tls_broker,
)

from cloud_coordinator.broker import (
    BrokerConfigError,
    BrokerUnavailable,
    CloudMqttClient,
    PublishTimeout,
    commands_topic,
    events_subscription,
    gateway_of_events_topic,
)
from cloud_coordinator.config import BrokerConfig
from tests.support.certs import TestPki
from tests.support.mosquitto import MosquittoBroker


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> TestPki:
    return make_test_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def broker(tmp_path: Path, pki: TestPki) -> Iterator[MosquittoBroker]:
    with tls_broker(tmp_path / "broker", pki) as running:
        yield running


def test_ingest_broker_publish_waits_for_puback(
    broker: MosquittoBroker, pki: TestPki
) -> None:
    config = cloud_broker_config(broker, pki)
    topic = commands_topic(config, "gw-1")
    with raw_client(broker, pki, "gw-1", subscribe=topic) as gateway:
        with CloudMqttClient(config, client_id="cloud-test") as cloud:
            document = {"schema": "gateway-command/1", "command_id": "c1"}
            cloud.publish(topic, document)
        assert gateway.next_message() == (topic, document)


def test_ingest_broker_publish_needs_schema_and_plain_topic(
    broker: MosquittoBroker, pki: TestPki
) -> None:
    with CloudMqttClient(cloud_broker_config(broker, pki)) as cloud:
        with pytest.raises(ValueError, match="schema"):
            cloud.publish("cloud/events", {"id": 1})
        with pytest.raises(ValueError, match="plain topic"):
            cloud.publish("cloud/#", {"schema": "x"})


def test_ingest_broker_publish_times_out_when_broker_gone(
    broker: MosquittoBroker, pki: TestPki
) -> None:
    cloud = CloudMqttClient(cloud_broker_config(broker, pki))
    cloud.connect()
    try:
        broker.stop(kill=True)
        with pytest.raises(PublishTimeout, match="cloud/events"):
            cloud.publish("cloud/events", {"schema": "x"}, timeout_s=1.0)
    finally:
        cloud.close()


def test_ingest_broker_refuses_unknown_ca(
    broker: MosquittoBroker, pki: TestPki, tmp_path: Path
) -> None:
    wrong_ca = tmp_path / "other-ca.pem"
    wrong_ca.write_bytes(pki.intruder.cert_file.read_bytes())
    config = dataclasses.replace(
        cloud_broker_config(broker, pki), ca_file=str(wrong_ca)
    )
    with pytest.raises(BrokerUnavailable, match=str(broker.port)):
        CloudMqttClient(config).connect(timeout_s=3.0)
    missing = dataclasses.replace(config, ca_file=str(tmp_path / "missing.pem"))
    with pytest.raises(BrokerConfigError, match=r"missing\.pem"):
        CloudMqttClient(missing)


def test_ingest_broker_topics() -> None:
    broker_config = BrokerConfig(gateways_prefix="fleet")
    assert events_subscription(broker_config) == "$share/ingest/fleet/+/events"
    assert gateway_of_events_topic(broker_config, "fleet/gw-9/events") == "gw-9"
    assert gateway_of_events_topic(broker_config, "fleet/gw-9/status") is None
    assert gateway_of_events_topic(broker_config, "gateways/gw-9/events") is None
    with pytest.raises(ValueError, match="group"):
        events_subscription(broker_config, "a/b")


def test_ingest_broker_connect_waits_for_the_subscription(
    broker: MosquittoBroker, pki: TestPki
) -> None:
    config = cloud_broker_config(broker, pki)
    received: list[str] = []
    with CloudMqttClient(
        config,
        client_id="cloud-listener",
        subscriptions=[(events_subscription(config), 1)],
        handler=lambda message: received.append(message.topic),
    ):
        # No sleep: connect() returned after the SUBACK, so this is delivered.
        with raw_client(broker, pki, "gw-2") as gateway:
            gateway.publish_json("gateways/gw-2/events", {"schema": "x"})
        deadline = time.monotonic() + 30
        while not received and time.monotonic() < deadline:
            time.sleep(0.05)
    assert received == ["gateways/gw-2/events"]
