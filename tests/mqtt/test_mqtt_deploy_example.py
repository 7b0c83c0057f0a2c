"""The shipped broker example (deploy/mosquitto) runs and serves a gateway."""

from __future__ import annotations

from pathlib import Path

from mqtt_helpers import (
    WAIT_S,
    ClientFactory,
    Observer,
    has_events,
    make_event,
    tls_config,
)

from tests.support.certs import TestPki
from tests.support.mosquitto import BrokerSettings, run_mosquitto

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "mosquitto"


def _template(pki: TestPki) -> str:
    """Point the example at the test PKI, a loopback port and a temp folder."""
    text = (DEPLOY / "mosquitto.conf.example").read_text()
    replacements = {
        "listener 8883": "listener {port} {host}",
        "/etc/mosquitto/suitlink/ca.pem": str(pki.ca_file),
        "/etc/mosquitto/suitlink/broker.pem": str(pki.server.cert_file),
        "/etc/mosquitto/suitlink/broker.key": str(pki.server.key_file),
        "/etc/mosquitto/suitlink/aclfile": str(DEPLOY / "aclfile.example"),
        "persistence_location /var/lib/mosquitto/": "persistence_location {work_dir}/",
        "log_dest syslog": "log_dest file {log_path}",
    }
    for old, new in replacements.items():
        assert old in text, f"example no longer contains {old!r}"
        text = text.replace(old, new)
    # Tests run as root here; keep the broker from switching to its own user.
    return "user {user}\n" + text


def test_example_broker_config_serves_a_gateway(
    tmp_path: Path, pki: TestPki, make_client: ClientFactory
) -> None:
    settings = BrokerSettings(template=_template(pki))
    with run_mosquitto(tmp_path / "example", settings) as broker:
        cloud = Observer(
            broker.port,
            ["gateways/+/events"],
            tls=(pki, pki.client("cloud-coordinator")),
        )
        client = make_client(tls_config(broker.port, pki))
        client.enqueue(make_event(1))
        cloud.wait_for(has_events(1))
        assert client.wait_delivered(WAIT_S)
        client.stop()
        cloud.close()
        # The certificate's common name became the ACL user.
        assert "as gw-1 (p5, c0, k5, u'gw-1')" in broker.log_text()
