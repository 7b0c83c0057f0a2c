"""A TLS Mosquitto with the shipped ACL and the cloud's broker config, for tests.

The broker requires client certificates and maps each certificate's common
name to an ACL user (``deploy/mosquitto/aclfile.example`` unchanged), like
production: gateways ``gw-1``/``gw-2``, the cloud service account
``cloud-coordinator`` and the R&D console ``rnd-console``.
"""

from __future__ import annotations

import json
import queue
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from cloud_coordinator.config import BrokerConfig
from edge_agent.mqtt.tls import ExpectedNameContext
from tests.support.certs import BROKER_NAME, TestPki, make_pki
from tests.support.mosquitto import (
    BrokerSettings,
    MosquittoBroker,
    TlsListener,
    run_mosquitto,
)

PROJECT_ROOT = Path(__file__).resolve().parents[2]
ACL_EXAMPLE = PROJECT_ROOT / "deploy" / "mosquitto" / "aclfile.example"
CLIENTS = ("gw-1", "gw-2", "cloud-coordinator", "rnd-console")
WAIT_S = 30.0


def make_test_pki(directory: Path) -> TestPki:
    """Return a CA, broker certificate and the test clients' certificates."""
    return make_pki(directory, clients=CLIENTS)


@contextmanager
def tls_broker(work_dir: Path, pki: TestPki) -> Iterator[MosquittoBroker]:
    """Run a TLS broker with the shipped ACL for the block."""
    settings = BrokerSettings(
        tls=TlsListener(
            ca_file=pki.ca_file,
            cert_file=pki.server.cert_file,
            key_file=pki.server.key_file,
        ),
        acl_text=ACL_EXAMPLE.read_text(),
    )
    with run_mosquitto(work_dir, settings) as broker:
        yield broker


def cloud_broker_config(broker: MosquittoBroker, pki: TestPki) -> BrokerConfig:
    """Return the ``[broker]`` section of the cloud service account."""
    pair = pki.clients["cloud-coordinator"]
    return BrokerConfig(
        host="127.0.0.1",
        port=broker.port,
        ca_file=str(pki.ca_file),
        cert_file=str(pair.cert_file),
        key_file=str(pair.key_file),
        tls_server_name=BROKER_NAME,
        publish_timeout_s=WAIT_S,
    )


@dataclass
class RawClient:
    """A plain paho client with a certificate (gateway or R&D console)."""

    client: mqtt.Client
    messages: queue.Queue[tuple[str, bytes]] = field(default_factory=queue.Queue)

    def publish_json(self, topic: str, document: dict[str, Any]) -> None:
        info = self.client.publish(topic, json.dumps(document), qos=1)
        info.wait_for_publish(WAIT_S)
        assert info.is_published(), f"no PUBACK for {topic}"

    def next_message(self, timeout_s: float = WAIT_S) -> tuple[str, dict[str, Any]]:
        topic, payload = self.messages.get(timeout=timeout_s)
        return topic, json.loads(payload)


@contextmanager
def raw_client(
    broker: MosquittoBroker, pki: TestPki, name: str, subscribe: str | None = None
) -> Iterator[RawClient]:
    """Connect as certificate ``name``; optionally subscribe (QoS 1) first."""
    pair = pki.clients[name]
    context = ExpectedNameContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(cafile=pki.ca_file)
    context.load_cert_chain(pair.cert_file, pair.key_file)
    context.expected_name = BROKER_NAME
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=f"{name}-test",
        protocol=MQTTProtocolVersion.MQTTv5,
    )
    client.tls_set_context(context)
    wrapper = RawClient(client)
    ready = threading.Event()

    def on_connect(*_: Any) -> None:
        if subscribe is None:
            ready.set()
        else:
            client.subscribe(subscribe, 1)

    def on_subscribe(*_: Any) -> None:
        ready.set()

    def on_message(_c: Any, _u: Any, message: mqtt.MQTTMessage) -> None:
        wrapper.messages.put((message.topic, bytes(message.payload)))

    client.on_connect = on_connect
    client.on_subscribe = on_subscribe
    client.on_message = on_message
    client.connect("127.0.0.1", broker.port)
    client.loop_start()
    try:
        assert ready.wait(WAIT_S), f"{name}: not connected/subscribed"
        yield wrapper
    finally:
        client.disconnect()
        client.loop_stop()
