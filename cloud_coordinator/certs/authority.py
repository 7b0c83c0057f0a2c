"""Make the fleet CA and issue broker and client certificates from it.

Layout of a CA folder (``ca.key`` stays offline, mode 0600)::

    ca.pem  ca.key  issued.jsonl  broker/  clients/{id}.pem  clients/{id}.key

Every certificate the CA signs is appended to ``issued.jsonl`` (name, kind,
serial, expiry). A name is bound to one kind forever: a device certificate
for a name that belongs to a gateway is refused, because the broker's ACL
patterns grant ``%u`` both trees and only unique names keep them apart.
Re-issuing a name of the same kind (rotation) is allowed.

Errors::

    CertificateError (ValueError)   bad name, kind clash, unreadable CA or CSR
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import logging
import os
import re
from dataclasses import asdict, dataclass
from enum import StrEnum
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = [
    "CLIENT_KINDS",
    "SERVICE_NAMES",
    "CertificateAuthority",
    "CertificateError",
    "ClientKind",
    "IssuedFiles",
    "LedgerEntry",
    "check_client_name",
]

_LOGGER = logging.getLogger(__name__)

ORGANIZATION = "suitlink"
# The CA outlives every certificate it signs; rotate it well before then.
CA_VALIDITY_DAYS = 3650
# 825 days is the longest lifetime TLS clients commonly accept for leaf
# certificates; gateways are re-issued long before that.
LEAF_VALIDITY_DAYS = 825
# Back-date the start so a gateway whose clock lags a little accepts it.
CLOCK_SKEW = dt.timedelta(hours=1)
# Names become MQTT topic levels and ACL users: no '/', '+', '#', spaces or
# control characters; short enough for a topic and a log line.
_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
LEDGER_NAME = "issued.jsonl"


class CertificateError(ValueError):
    """A certificate cannot be issued (the message says why and what to do)."""


class ClientKind(StrEnum):
    """What a client certificate identifies; written as its OU."""

    GATEWAY = "gateway"
    DEVICE = "device"
    SERVICE = "service"


CLIENT_KINDS: tuple[str, ...] = tuple(kind.value for kind in ClientKind)
# Service accounts the shipped ACL (deploy/mosquitto/aclfile.example) names.
SERVICE_NAMES: tuple[str, ...] = ("cloud-coordinator", "rnd-console")


def check_client_name(kind: ClientKind, name: str) -> str:
    """Return ``name`` if it can identify a client of ``kind``.

    Raises:
        CertificateError: not a valid topic level, a service name used for a
            gateway or device, or an unknown service.
    """
    if not _NAME_RE.fullmatch(name):
        raise CertificateError(
            f"name {name!r}: expected 1-64 of A-Z a-z 0-9 . _ - starting with a "
            "letter or digit (it becomes an MQTT topic level and the ACL user)"
        )
    if kind is ClientKind.SERVICE and name not in SERVICE_NAMES:
        raise CertificateError(
            f"service {name!r}: the ACL knows only {list(SERVICE_NAMES)}; add a "
            "'user' block to the aclfile before issuing another service"
        )
    if kind is not ClientKind.SERVICE and name in SERVICE_NAMES:
        raise CertificateError(
            f"{kind.value} {name!r}: that name is a cloud service account"
        )
    return name


@dataclass(frozen=True)
class IssuedFiles:
    """Where an issued certificate (and its key, unless from a CSR) went."""

    cert_file: Path
    key_file: Path | None


@dataclass(frozen=True)
class LedgerEntry:
    """One line of ``issued.jsonl``."""

    name: str
    kind: str
    serial: str
    not_after: str
    issued_at: str


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _subject(common_name: str, unit: str | None = None) -> x509.Name:
    attributes = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, ORGANIZATION)]
    if unit:
        attributes.append(x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, unit))
    attributes.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
    return x509.Name(attributes)


def _write_private(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as stream:
        stream.write(data)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _key_usage(*, ca: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=not ca,
        key_cert_sign=ca,
        crl_sign=ca,
        encipher_only=False,
        decipher_only=False,
    )


class CertificateAuthority:
    """The fleet CA kept in one folder; see the module docstring."""

    def __init__(
        self, directory: Path, key: ec.EllipticCurvePrivateKey, cert: x509.Certificate
    ) -> None:
        """Wrap a loaded CA; use :meth:`create` or :meth:`load`."""
        self.directory = directory
        self._key = key
        self.cert = cert

    @property
    def cert_file(self) -> Path:
        """Return the CA certificate file (what brokers and clients trust)."""
        return self.directory / "ca.pem"

    @property
    def ledger_file(self) -> Path:
        """Return the ledger of issued certificates."""
        return self.directory / LEDGER_NAME

    @classmethod
    def create(
        cls,
        directory: Path,
        *,
        common_name: str = "suitlink fleet CA",
        validity_days: int = CA_VALIDITY_DAYS,
    ) -> CertificateAuthority:
        """Make a new CA key and self-signed certificate in ``directory``.

        Raises:
            CertificateError: ``directory`` already holds a CA.
        """
        if (directory / "ca.key").exists():
            raise CertificateError(
                f"{directory}: already holds a CA (ca.key); refusing to replace it"
            )
        key = ec.generate_private_key(ec.SECP256R1())
        now = _now()
        cert = (
            x509.CertificateBuilder()
            .subject_name(_subject(common_name))
            .issuer_name(_subject(common_name))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - CLOCK_SKEW)
            .not_valid_after(now + dt.timedelta(days=validity_days))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(_key_usage(ca=True), critical=True)
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                critical=False,
            )
            .sign(key, hashes.SHA256())
        )
        _write_private(directory / "ca.key", _key_pem(key))
        (directory / "ca.pem").write_bytes(_cert_pem(cert))
        _LOGGER.info("ca %s: created, valid %d days", directory, validity_days)
        return cls(directory, key, cert)

    @classmethod
    def load(cls, directory: Path) -> CertificateAuthority:
        """Load the CA of ``directory``.

        Raises:
            CertificateError: a file is missing or not a matching PEM pair.
        """
        try:
            key = serialization.load_pem_private_key(
                (directory / "ca.key").read_bytes(), password=None
            )
            cert = x509.load_pem_x509_certificate((directory / "ca.pem").read_bytes())
        except (OSError, ValueError, TypeError) as exc:
            raise CertificateError(
                f"{directory}: cannot load ca.pem and ca.key ({exc}); create a CA "
                "with `cloud-coordinator certs init-ca`"
            ) from exc
        if not isinstance(key, ec.EllipticCurvePrivateKey) or (
            key.public_key() != cert.public_key()
        ):
            raise CertificateError(f"{directory}: ca.key does not match ca.pem")
        return cls(directory, key, cert)

    # -- issuing ------------------------------------------------------------

    def _sign(
        self,
        subject: x509.Name,
        public_key: ec.EllipticCurvePublicKey,
        usage: x509.ObjectIdentifier,
        validity_days: int,
        alt_names: list[x509.GeneralName] | None = None,
    ) -> x509.Certificate:
        now = _now()
        not_after = min(
            now + dt.timedelta(days=validity_days), self.cert.not_valid_after_utc
        )
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(self.cert.subject)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - CLOCK_SKEW)
            .not_valid_after(not_after)
            .add_extension(
                x509.BasicConstraints(ca=False, path_length=None), critical=True
            )
            .add_extension(_key_usage(ca=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(
                    self._key.public_key()
                ),
                critical=False,
            )
        )
        if alt_names:
            builder = builder.add_extension(
                x509.SubjectAlternativeName(alt_names), critical=False
            )
        return builder.sign(self._key, hashes.SHA256())

    def issue_broker(
        self,
        names: list[str],
        out_dir: Path | None = None,
        *,
        validity_days: int = LEAF_VALIDITY_DAYS,
    ) -> IssuedFiles:
        """Issue the broker's server certificate for DNS names or IP addresses.

        The first name is the common name; all go to subjectAltName, which
        is what clients check (``mqtt.tls_server_name`` on gateways).

        Raises:
            CertificateError: no names given.
        """
        if not names:
            raise CertificateError("broker: give at least one DNS name or IP address")
        alt_names: list[x509.GeneralName] = []
        for name in names:
            try:
                alt_names.append(x509.IPAddress(ipaddress.ip_address(name)))
            except ValueError:
                alt_names.append(x509.DNSName(name))
        key = ec.generate_private_key(ec.SECP256R1())
        cert = self._sign(
            _subject(names[0], "broker"),
            key.public_key(),
            ExtendedKeyUsageOID.SERVER_AUTH,
            validity_days,
            alt_names,
        )
        folder = out_dir or self.directory / "broker"
        key_file = folder / "broker.key"
        _write_private(key_file, _key_pem(key))
        (folder / "broker.pem").write_bytes(_cert_pem(cert))
        self._record(names[0], "broker", cert)
        return IssuedFiles(folder / "broker.pem", key_file)

    def issue_client(
        self,
        kind: ClientKind,
        name: str,
        out_dir: Path | None = None,
        *,
        csr_pem: bytes | None = None,
        validity_days: int = LEAF_VALIDITY_DAYS,
    ) -> IssuedFiles:
        """Issue a client certificate whose common name is ``name``.

        With ``csr_pem`` (a CSR made on the gateway, whose key never leaves
        it) the CSR's public key is signed and its common name must equal
        ``name``; otherwise a key is made and written beside the
        certificate (mode 0600).

        Raises:
            CertificateError: a bad name, a name already issued to another
                kind, or a CSR that is unreadable, badly signed, not EC
                P-256 or for another name.
        """
        kind = ClientKind(kind)
        check_client_name(kind, name)
        self._check_kind(name, kind)
        key: ec.EllipticCurvePrivateKey | None = None
        if csr_pem is None:
            key = ec.generate_private_key(ec.SECP256R1())
            public_key = key.public_key()
        else:
            public_key = _csr_public_key(csr_pem, name)
        cert = self._sign(
            _subject(name, kind.value),
            public_key,
            ExtendedKeyUsageOID.CLIENT_AUTH,
            validity_days,
        )
        folder = out_dir or self.directory / "clients"
        folder.mkdir(parents=True, exist_ok=True)
        files = IssuedFiles(
            folder / f"{name}.pem", folder / f"{name}.key" if key else None
        )
        if key is not None and files.key_file is not None:
            _write_private(files.key_file, _key_pem(key))
        files.cert_file.write_bytes(_cert_pem(cert))
        self._record(name, kind.value, cert)
        return files

    # -- ledger -------------------------------------------------------------

    def ledger(self) -> list[LedgerEntry]:
        """Return every certificate issued so far, oldest first.

        Raises:
            CertificateError: a ledger line is not a valid entry.
        """
        try:
            lines = self.ledger_file.read_text().splitlines()
        except FileNotFoundError:
            return []
        entries = []
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                entries.append(LedgerEntry(**json.loads(line)))
            except (ValueError, TypeError) as exc:
                raise CertificateError(
                    f"{self.ledger_file}:{number}: not a ledger entry ({exc})"
                ) from exc
        return entries

    def _check_kind(self, name: str, kind: ClientKind) -> None:
        for entry in self.ledger():
            if entry.name == name and entry.kind != kind.value:
                raise CertificateError(
                    f"{kind.value} {name!r}: that name was issued to a "
                    f"{entry.kind} (serial {entry.serial}); names must be unique "
                    "across gateways, devices and services"
                )

    def _record(self, name: str, kind: str, cert: x509.Certificate) -> None:
        entry = LedgerEntry(
            name=name,
            kind=kind,
            serial=format(cert.serial_number, "x"),
            not_after=cert.not_valid_after_utc.isoformat(),
            issued_at=_now().isoformat(timespec="seconds"),
        )
        with self.ledger_file.open("a") as stream:
            stream.write(json.dumps(asdict(entry)) + "\n")
            stream.flush()
            os.fsync(stream.fileno())
        _LOGGER.info(
            "ca %s: issued %s certificate for %s (serial %s, until %s)",
            self.directory,
            kind,
            name,
            entry.serial,
            entry.not_after,
        )


def _csr_public_key(csr_pem: bytes, name: str) -> ec.EllipticCurvePublicKey:
    try:
        csr = x509.load_pem_x509_csr(csr_pem)
    except ValueError as exc:
        raise CertificateError(f"CSR for {name!r}: not a PEM CSR ({exc})") from exc
    if not csr.is_signature_valid:
        raise CertificateError(f"CSR for {name!r}: its signature does not verify")
    names = csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    found = [str(item.value) for item in names]
    if found != [name]:
        raise CertificateError(
            f"CSR for {name!r}: common name is {found}, expected [{name!r}]"
        )
    try:
        public_key = csr.public_key()
    except (ValueError, InvalidSignature) as exc:
        raise CertificateError(f"CSR for {name!r}: unusable key ({exc})") from exc
    if not isinstance(public_key, ec.EllipticCurvePublicKey) or not isinstance(
        public_key.curve, ec.SECP256R1
    ):
        raise CertificateError(f"CSR for {name!r}: expected an EC P-256 key")
    return public_key
