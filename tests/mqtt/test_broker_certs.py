"""The fleet CA: names, ledger, CSRs, and the ``certs`` command."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from cloud_coordinator.certs import CertificateAuthority, CertificateError, ClientKind
from cloud_coordinator.cli import main


def _load(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def _csr(name: str) -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .sign(key, hashes.SHA256())
    )
    return csr.public_bytes(serialization.Encoding.PEM)


def test_broker_certs_client_certificate_names_its_identity(tmp_path: Path) -> None:
    ca = CertificateAuthority.create(tmp_path / "ca")
    files = ca.issue_client(ClientKind.DEVICE, "d-42")
    cert = _load(files.cert_file)

    cn = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    ou = cert.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)[0]
    usage = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert (cn, ou.value) == ("d-42", "device")
    assert list(usage) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    assert cert.issuer == ca.cert.subject
    cert.verify_directly_issued_by(ca.cert)
    assert files.key_file is not None
    assert stat.S_IMODE(files.key_file.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "ca" / "ca.key").stat().st_mode) == 0o600


def test_broker_certs_a_name_belongs_to_one_kind(tmp_path: Path) -> None:
    ca = CertificateAuthority.create(tmp_path / "ca")
    ca.issue_client(ClientKind.GATEWAY, "gw-1")
    ca.issue_client(ClientKind.GATEWAY, "gw-1")  # rotation is fine

    with pytest.raises(CertificateError, match="issued to a gateway"):
        CertificateAuthority.load(tmp_path / "ca").issue_client(
            ClientKind.DEVICE, "gw-1"
        )
    assert [entry.kind for entry in ca.ledger()] == ["gateway", "gateway"]


@pytest.mark.parametrize(
    ("kind", "name", "message"),
    [
        (ClientKind.GATEWAY, "gw/1", "topic level"),
        (ClientKind.DEVICE, "d+", "topic level"),
        (ClientKind.GATEWAY, "", "topic level"),
        (ClientKind.DEVICE, "cloud-coordinator", "service account"),
        (ClientKind.SERVICE, "root", "ACL knows only"),
    ],
)
def test_broker_certs_refuses_bad_names(
    tmp_path: Path, kind: ClientKind, name: str, message: str
) -> None:
    ca = CertificateAuthority.create(tmp_path / "ca")
    with pytest.raises(CertificateError, match=message):
        ca.issue_client(kind, name)
    assert ca.ledger() == []


def test_broker_certs_signs_a_csr_for_its_name_only(tmp_path: Path) -> None:
    ca = CertificateAuthority.create(tmp_path / "ca")
    files = ca.issue_client(ClientKind.GATEWAY, "gw-7", csr_pem=_csr("gw-7"))
    assert files.key_file is None
    assert _load(files.cert_file).subject.rfc4514_string().startswith("CN=gw-7,")

    with pytest.raises(CertificateError, match="common name is"):
        ca.issue_client(ClientKind.GATEWAY, "gw-8", csr_pem=_csr("gw-1"))
    with pytest.raises(CertificateError, match="not a PEM CSR"):
        ca.issue_client(ClientKind.GATEWAY, "gw-8", csr_pem=b"garbage")


def test_broker_certs_command_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ca_dir = tmp_path / "fleet-ca"
    assert main(["certs", "init-ca", "--ca-dir", str(ca_dir)]) == 0
    assert main(["certs", "init-ca", "--ca-dir", str(ca_dir)]) == 3
    assert main(["certs", "broker", "--ca-dir", str(ca_dir), "mqtt.example"]) == 0
    assert (
        main(
            [
                "certs",
                "issue",
                "--ca-dir",
                str(ca_dir),
                "--kind",
                "gateway",
                "--id",
                "gw-1",
            ]
        )
        == 0
    )
    assert (
        main(
            [
                "certs",
                "issue",
                "--ca-dir",
                str(ca_dir),
                "--kind",
                "device",
                "--id",
                "gw-1",
            ]
        )
        == 2
    )
    capsys.readouterr()
    assert main(["certs", "list", "--ca-dir", str(ca_dir)]) == 0
    listing = capsys.readouterr().out.splitlines()
    assert [line.split()[:2] for line in listing] == [
        ["broker", "mqtt.example"],
        ["gateway", "gw-1"],
    ]
    broker = _load(ca_dir / "broker" / "broker.pem")
    names = broker.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    assert names.value.get_values_for_type(x509.DNSName) == ["mqtt.example"]
