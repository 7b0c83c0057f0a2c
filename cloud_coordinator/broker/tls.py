"""The TLS context of the cloud's broker link.

Reuses the gateway's :class:`~edge_agent.mqtt.tls.ExpectedNameContext`, so the
broker's certificate is checked against ``tls_server_name`` when the service
reaches the broker by address or internal alias. Chain and hostname checks
are always on.
"""

from __future__ import annotations

import ssl
from pathlib import Path

from edge_agent.mqtt.tls import ExpectedNameContext

from ..config import BrokerConfig
from .errors import BrokerConfigError

__all__ = ["build_tls_context", "uses_tls"]


def uses_tls(config: BrokerConfig) -> bool:
    """Return whether ``config`` asks for TLS (a CA or a client certificate)."""
    return bool(config.ca_file or config.cert_file)


def build_tls_context(config: BrokerConfig, base_dir: Path) -> ExpectedNameContext:
    """Return a verifying client context (TLS 1.2 or newer) for ``config``.

    Relative file names are taken from ``base_dir``.

    Raises:
        BrokerConfigError: a CA, certificate or key file cannot be loaded.
    """
    context = ExpectedNameContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.verify_mode = ssl.CERT_REQUIRED
    context.check_hostname = True
    context.expected_name = config.tls_server_name or None
    ca_file = base_dir / config.ca_file if config.ca_file else None
    cert_file = base_dir / config.cert_file if config.cert_file else None
    key_file = base_dir / config.key_file if config.key_file else None
    try:
        if ca_file is not None:
            context.load_verify_locations(cafile=ca_file)
        else:
            context.load_default_certs(ssl.Purpose.SERVER_AUTH)
        if cert_file is not None and key_file is not None:
            context.load_cert_chain(cert_file, key_file)
    except (OSError, ssl.SSLError) as exc:
        raise BrokerConfigError(
            f"[broker]: cannot load TLS files (ca_file={str(ca_file)!r}, "
            f"cert_file={str(cert_file)!r}, key_file={str(key_file)!r}): {exc}"
        ) from exc
    return context
