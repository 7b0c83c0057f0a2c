"""MqttConfig checks and the topics it implies."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from mqtt_helpers import plain_config, tls_config

from edge_agent.mqtt import GatewayMqttClient, MqttConfig, MqttConfigError, Topics
from tests.support.certs import TestPki


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"gateway_id": ""}, r"gateway_id = '': expected a non-empty id"),
        ({"gateway_id": "gw/1"}, r"gateway_id = 'gw/1'"),
        ({"port": 0}, r"port = 0: expected 1\.\.65535"),
        ({"keepalive_s": 1}, r"keepalive_s = 1: expected 5\.\.1200"),
        ({"backoff_min_s": 5.0, "backoff_max_s": 1.0}, r"backoff_min_s = 5\.0"),
        ({"max_inflight": 0}, r"max_inflight = 0"),
        ({"gateways_prefix": "gw/#"}, r"gateways_prefix = 'gw/#'"),
        ({"host": ""}, r"host = ''"),
    ],
)
def test_bad_values_name_the_field(changes: dict[str, object], message: str) -> None:
    with pytest.raises(MqttConfigError, match=message):
        replace(plain_config(1883), **changes).validate()


def test_tls_files_are_checked_before_the_link_starts(
    pki: TestPki, tmp_path: Path
) -> None:
    config = tls_config(8883, pki)
    with pytest.raises(MqttConfigError, match="cert_file and key_file go together"):
        replace(config, key_file=None).validate()
    missing = str(tmp_path / "nope.pem")
    with pytest.raises(MqttConfigError, match=r"ca_file = '.*nope\.pem': no such file"):
        replace(config, ca_file=missing).validate()
    # A key that does not belong to the certificate fails at construction,
    # with the files named, not later in the link thread.
    mismatched = replace(config, key_file=str(pki.client("gw-2").key_file))
    with pytest.raises(MqttConfigError, match="cannot load TLS files"):
        GatewayMqttClient(mismatched, tmp_path / "outbox.db")


def test_topics_follow_prefixes_and_id() -> None:
    config = replace(
        MqttConfig(gateway_id="gw-7"), gateways_prefix="fleet/eu/gw", models_prefix="m"
    )
    topics = config.topics()
    assert topics.status == "fleet/eu/gw/gw-7/status"
    assert topics.events == "fleet/eu/gw/gw-7/events"
    assert topics.commands == "fleet/eu/gw/gw-7/commands"
    assert topics.announcements == "m/+/announce"
    assert topics.model_name_of("m/crash-detector/announce") == "crash-detector"
    assert topics.model_name_of("m/crash-detector/other") is None
    assert (
        Topics("gateways", "models", "gw-1").model_name_of("models/a/b/announce")
        is None
    )
    assert config.effective_client_id == "gw-7"
