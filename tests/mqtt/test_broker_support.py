"""Run the shipped broker configuration with certificates from the fleet CA.

Shared by the broker ACL tests and the device-data tests: the CA, broker
and client certificates are issued by :mod:`cloud_coordinator.certs` (the
same code operators run), and Mosquitto runs ``deploy/mosquitto``'s config
and ACL unchanged except for paths, the loopback port and the log file.
No tests live here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from cloud_coordinator.certs import CertificateAuthority, ClientKind, IssuedFiles
from tests.support.certs import BROKER_NAME
from tests.support.mosquitto import BrokerSettings

__all__ = ["DEPLOY", "FleetPki", "deploy_broker_settings", "make_fleet_pki"]

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "mosquitto"


@dataclass
class FleetPki:
    """A fleet CA with its broker and client certificates, plus an intruder."""

    ca: CertificateAuthority
    broker: IssuedFiles
    intruder: IssuedFiles
    clients: dict[str, IssuedFiles] = field(default_factory=dict)

    @property
    def ca_file(self) -> Path:
        """Return the CA certificate clients and the broker trust."""
        return self.ca.cert_file

    def client(self, name: str) -> IssuedFiles:
        """Return the certificate issued to ``name``."""
        return self.clients[name]


def make_fleet_pki(
    directory: Path,
    *,
    gateways: tuple[str, ...] = (),
    devices: tuple[str, ...] = (),
    services: tuple[str, ...] = ("cloud-coordinator",),
) -> FleetPki:
    """Create a CA in ``directory`` and issue every named certificate.

    The intruder certificate carries the first gateway's (or device's) name
    but comes from a second, unrelated CA.
    """
    ca = CertificateAuthority.create(directory / "ca")
    broker = ca.issue_broker([BROKER_NAME])
    foreign = CertificateAuthority.create(directory / "foreign-ca")
    names = (*gateways, *devices, "intruder")
    intruder = foreign.issue_client(ClientKind.GATEWAY, names[0])
    pki = FleetPki(ca, broker, intruder)
    for kind, group in (
        (ClientKind.GATEWAY, gateways),
        (ClientKind.DEVICE, devices),
        (ClientKind.SERVICE, services),
    ):
        for name in group:
            pki.clients[name] = ca.issue_client(kind, name)
    return pki


def deploy_broker_settings(pki: FleetPki) -> BrokerSettings:
    """Return settings that run the shipped config and ACL with ``pki``."""
    text = (DEPLOY / "mosquitto.conf.example").read_text()
    assert pki.broker.key_file is not None
    replacements = {
        "listener 8883": "listener {port} {host}",
        "/etc/mosquitto/suitlink/ca.pem": str(pki.ca_file),
        "/etc/mosquitto/suitlink/broker.pem": str(pki.broker.cert_file),
        "/etc/mosquitto/suitlink/broker.key": str(pki.broker.key_file),
        "/etc/mosquitto/suitlink/aclfile": str(DEPLOY / "aclfile.example"),
        "persistence_location /var/lib/mosquitto/": "persistence_location {work_dir}/",
        "log_dest syslog": "log_dest file {log_path}",
    }
    for old, new in replacements.items():
        assert old in text, f"mosquitto.conf.example no longer contains {old!r}"
        text = text.replace(old, new)
    # Tests run as root here; keep the broker from switching to its own user.
    return BrokerSettings(template="user {user}\n" + text)
