"""Fixtures for the MQTT tests: real Mosquitto brokers, a PKI, a flaky proxy.

Each test gets its own broker (retained messages and sessions do not leak
between tests); start-up takes well under a second. The TLS broker uses the
ACL shipped in ``deploy/mosquitto/aclfile.example`` unchanged.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from mqtt_helpers import ClientFactory

from edge_agent.mqtt import GatewayMqttClient, InboundHandler, MqttConfig
from tests.support.certs import TestPki, make_pki
from tests.support.flaky_proxy import FlakyProxy, run_flaky_proxy
from tests.support.mosquitto import (
    BrokerSettings,
    MosquittoBroker,
    TlsListener,
    run_mosquitto,
)

PROJECT_ROOT = Path(__file__).resolve().parents[2]
ACL_EXAMPLE = PROJECT_ROOT / "deploy" / "mosquitto" / "aclfile.example"


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> TestPki:
    return make_pki(
        tmp_path_factory.mktemp("pki"), clients=("gw-1", "gw-2", "cloud-coordinator")
    )


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[MosquittoBroker]:
    with run_mosquitto(tmp_path / "broker") as running:
        yield running


def _tls_settings(pki: TestPki, *, wrong_name: bool = False) -> BrokerSettings:
    server = pki.wrong_server if wrong_name else pki.server
    return BrokerSettings(
        tls=TlsListener(
            ca_file=pki.ca_file, cert_file=server.cert_file, key_file=server.key_file
        ),
        acl_text=ACL_EXAMPLE.read_text(),
    )


@pytest.fixture
def tls_broker(tmp_path: Path, pki: TestPki) -> Iterator[MosquittoBroker]:
    with run_mosquitto(tmp_path / "tls-broker", _tls_settings(pki)) as running:
        yield running


@pytest.fixture
def wrong_name_broker(tmp_path: Path, pki: TestPki) -> Iterator[MosquittoBroker]:
    settings = _tls_settings(pki, wrong_name=True)
    with run_mosquitto(tmp_path / "wrong-name-broker", settings) as running:
        yield running


@pytest.fixture
def proxy(broker: MosquittoBroker) -> Iterator[FlakyProxy]:
    with run_flaky_proxy(broker.port) as running:
        yield running


@pytest.fixture
def make_client(tmp_path: Path) -> Iterator[ClientFactory]:
    """Build gateway clients that are stopped at the end of the test."""
    made: list[GatewayMqttClient] = []

    def make(
        config: MqttConfig,
        outbox: Path | None = None,
        *,
        on_message: InboundHandler | None = None,
        start: bool = True,
        **options: Any,
    ) -> GatewayMqttClient:
        path = outbox or tmp_path / f"outbox-{len(made)}.db"
        client = GatewayMqttClient(config, path, on_message=on_message, **options)
        made.append(client)
        if start:
            client.start()
        return client

    yield make
    for client in made:
        client.stop(timeout_s=5.0)
