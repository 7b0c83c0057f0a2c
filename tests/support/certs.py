"""Make a throw-away PKI for TLS tests with ``cryptography``.

One CA signs a broker certificate for ``broker.test`` (DNS name only, no IP,
so a client reaching 127.0.0.1 must be told the name to expect), a second
broker certificate for a wrong name (``other.test``), and one client
certificate per identity (common name = gateway id, which Mosquitto's
``use_identity_as_username`` turns into the ACL user). A second, unrelated
CA signs an "intruder" client certificate the broker must refuse.

Keys are EC P-256 (fast to make), written unencrypted with mode 0600.
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = [
    "BROKER_NAME",
    "WRONG_BROKER_NAME",
    "CertPair",
    "TestPki",
    "make_pki",
]

BROKER_NAME = "broker.test"
WRONG_BROKER_NAME = "other.test"
# Certificates live for a day: far past any test run, short if one leaks.
VALIDITY = datetime.timedelta(days=1)
# Back-date the start so a clock a little behind does not reject them.
CLOCK_SKEW = datetime.timedelta(hours=1)


@dataclass(frozen=True)
class CertPair:
    """A certificate and its key, as PEM files."""

    cert_file: Path
    key_file: Path


@dataclass
class _Authority:
    name: str
    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate


@dataclass
class TestPki:
    """Files of one test PKI."""

    __test__ = False  # not a pytest test class despite the name

    directory: Path
    ca_file: Path
    server: CertPair
    wrong_server: CertPair
    intruder: CertPair
    clients: dict[str, CertPair] = field(default_factory=dict)

    def client(self, name: str) -> CertPair:
        """Return the client certificate of ``name`` (a gateway id or 'cloud')."""
        return self.clients[name]


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "suitlink tests"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _write_key(key: ec.EllipticCurvePrivateKey, path: Path) -> None:
    data = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as stream:
        stream.write(data)


def _write_cert(cert: x509.Certificate, path: Path) -> None:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def _authority(common_name: str) -> _Authority:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(_name(common_name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - CLOCK_SKEW)
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
        )
        .sign(key, hashes.SHA256())
    )
    return _Authority(common_name, key, cert)


def _issue(
    authority: _Authority,
    directory: Path,
    file_stem: str,
    common_name: str,
    *,
    server_name: str | None,
) -> CertPair:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    usage = (
        ExtendedKeyUsageOID.SERVER_AUTH
        if server_name
        else ExtendedKeyUsageOID.CLIENT_AUTH
    )
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(authority.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - CLOCK_SKEW)
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(
                authority.key.public_key()
            ),
            critical=False,
        )
    )
    if server_name:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName(server_name)]), critical=False
        )
    cert = builder.sign(authority.key, hashes.SHA256())
    pair = CertPair(directory / f"{file_stem}.pem", directory / f"{file_stem}.key")
    _write_cert(cert, pair.cert_file)
    _write_key(key, pair.key_file)
    return pair


def make_pki(
    directory: Path,
    clients: tuple[str, ...] = ("gw-1", "gw-2", "cloud"),
    *,
    server_name: str = BROKER_NAME,
    wrong_name: str = WRONG_BROKER_NAME,
) -> TestPki:
    """Write a CA, broker and client certificates into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    authority = _authority("suitlink test CA")
    ca_file = directory / "ca.pem"
    _write_cert(authority.cert, ca_file)
    server = _issue(
        authority, directory, "broker", server_name, server_name=server_name
    )
    wrong = _issue(
        authority, directory, "broker-wrong-name", wrong_name, server_name=wrong_name
    )
    foreign = _authority("unrelated CA")
    intruder = _issue(foreign, directory, "intruder", clients[0], server_name=None)
    pki = TestPki(directory, ca_file, server, wrong, intruder)
    for name in clients:
        pki.clients[name] = _issue(
            authority, directory, f"client-{name}", name, server_name=None
        )
    return pki
