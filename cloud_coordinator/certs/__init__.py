"""The fleet CA: certificates for the broker, gateways, devices and services.

Mosquitto takes a client certificate's common name as the user its ACL
sees (``use_identity_as_username``), so issuing a certificate *is* granting
an identity: a gateway certificate for ``gw-1`` may publish under
``gateways/gw-1/`` only. :mod:`.authority` makes the CA and issues
certificates, and keeps a ledger of every name it issued so one name can
never belong to a gateway and a device at once (the ACL patterns would let
it act as both). ``cloud-coordinator certs`` is the command line.
"""

from .authority import (
    CLIENT_KINDS,
    SERVICE_NAMES,
    CertificateAuthority,
    CertificateError,
    ClientKind,
    IssuedFiles,
    LedgerEntry,
    check_client_name,
)

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
