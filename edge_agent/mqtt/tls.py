"""TLS for the broker link: CA, client certificate, and the expected name.

A gateway often reaches its broker by IP address or an internal alias while
the broker's certificate names a public host. paho-mqtt passes the host it
connects to as ``server_hostname``; the context built here replaces that
with ``tls_server_name``, so OpenSSL checks the certificate against the name
the operator expects (and sends it as SNI). Hostname checking and chain
verification stay on; nothing here ever turns them off.

When the check fails because the certificate names another host, the error
says which names the certificate does cover. Those come from a second,
diagnostic handshake (chain verified against the same CA, name not checked)
that only reads the certificate and closes; no MQTT byte goes over it.
"""

from __future__ import annotations

import logging
import socket
import ssl
from typing import Any

from .config import MqttConfig
from .errors import BrokerIdentityError, MqttConfigError

__all__ = [
    "ExpectedNameContext",
    "build_tls_context",
    "describe_server_certificate",
    "identity_error",
]

_LOGGER = logging.getLogger(__name__)

# OpenSSL verify codes for "certificate is valid, but not for this name".
_X509_V_ERR_HOSTNAME_MISMATCH = 62
_X509_V_ERR_IP_ADDRESS_MISMATCH = 64


class ExpectedNameContext(ssl.SSLContext):
    """An SSL client context that verifies every server against one name.

    It also remembers the socket it wrapped last: paho does not close a
    socket whose handshake failed, so the session closes it.
    """

    expected_name: str | None = None
    last_socket: ssl.SSLSocket | None = None

    def wrap_socket(
        self,
        sock: socket.socket,
        server_side: bool = False,
        do_handshake_on_connect: bool = True,
        suppress_ragged_eofs: bool = True,
        server_hostname: str | bytes | None = None,
        session: ssl.SSLSession | None = None,
    ) -> ssl.SSLSocket:
        """Wrap ``sock``, checking the peer against ``expected_name`` if set."""
        self.last_socket = super().wrap_socket(
            sock,
            server_side=server_side,
            do_handshake_on_connect=do_handshake_on_connect,
            suppress_ragged_eofs=suppress_ragged_eofs,
            server_hostname=self.expected_name or server_hostname,
            session=session,
        )
        return self.last_socket

    def close_last_socket(self) -> None:
        """Close the socket wrapped last (after a failed handshake)."""
        if self.last_socket is not None:
            self.last_socket.close()
            self.last_socket = None


def _load(context: ssl.SSLContext, config: MqttConfig) -> None:
    try:
        if config.ca_file:
            context.load_verify_locations(cafile=config.ca_file)
        else:
            context.load_default_certs(ssl.Purpose.SERVER_AUTH)
        if config.cert_file and config.key_file:
            context.load_cert_chain(config.cert_file, config.key_file)
    except (OSError, ssl.SSLError) as exc:
        raise MqttConfigError(
            f"mqtt: cannot load TLS files (ca_file={config.ca_file!r}, "
            f"cert_file={config.cert_file!r}, key_file={config.key_file!r}): {exc}"
        ) from exc


def build_tls_context(config: MqttConfig) -> ExpectedNameContext:
    """Return a verifying client context for ``config`` (TLS 1.2 or newer).

    Raises:
        MqttConfigError: a CA, certificate or key file cannot be loaded.
    """
    context = ExpectedNameContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.verify_mode = ssl.CERT_REQUIRED
    context.check_hostname = True
    context.expected_name = config.tls_server_name or None
    _load(context, config)
    return context


def _names_of(certificate: dict[str, Any]) -> str:
    alt_names = [
        f"{kind}:{value}" for kind, value in certificate.get("subjectAltName", ())
    ]
    subject = [
        f"{key}={value}"
        for relative_name in certificate.get("subject", ())
        for key, value in relative_name
    ]
    parts = []
    if alt_names:
        parts.append("subjectAltName " + ", ".join(alt_names))
    if subject:
        parts.append("subject " + ", ".join(subject))
    return "; ".join(parts) or "no names at all"


def describe_server_certificate(config: MqttConfig) -> str:
    """Return the names the broker's certificate covers, for an error message.

    The handshake verifies the chain against the configured CA but not the
    name; the socket is closed right after. Failures are described, not
    raised, because this only enriches another error.
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_REQUIRED
    try:
        _load(context, config)
        with (
            socket.create_connection(
                (config.host, config.port), timeout=config.connect_timeout_s
            ) as raw,
            context.wrap_socket(raw) as tls,
        ):
            certificate = tls.getpeercert()
    except (OSError, MqttConfigError) as exc:
        return f"(could not read the certificate: {exc})"
    if not certificate:
        return "(the broker sent no certificate)"
    return _names_of(certificate)


def identity_error(
    config: MqttConfig, exc: ssl.SSLCertVerificationError
) -> BrokerIdentityError:
    """Map a failed verification to a BrokerIdentityError that says why."""
    expected = config.tls_server_name or config.host
    code = exc.verify_code
    if code in (_X509_V_ERR_HOSTNAME_MISMATCH, _X509_V_ERR_IP_ADDRESS_MISMATCH):
        covers = describe_server_certificate(config)
        return BrokerIdentityError(
            config.broker,
            f"TLS certificate is not valid for the expected name {expected!r}; "
            f"it covers {covers}; set mqtt.tls_server_name to a name the "
            "broker's certificate lists, or reissue the broker certificate "
            "for this name (the connection was refused, not downgraded)",
        )
    return BrokerIdentityError(
        config.broker,
        f"TLS certificate not trusted: {exc.verify_message} (OpenSSL code "
        f"{code}); expected name {expected!r}, CA file {config.ca_file!r}; "
        "check mqtt.ca_file and the broker's certificate chain",
    )
