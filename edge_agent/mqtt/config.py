"""MQTT settings of one gateway, and the topics they imply.

Meant as the ``[mqtt]`` section of the gateway TOML::

    [mqtt]
    enabled = true
    host = "10.0.0.5"                 # an IP is fine: see tls_server_name
    port = 8883
    tls_server_name = "broker.example.net"
    ca_file = "/etc/edge-agent/mqtt/ca.pem"
    cert_file = "/etc/edge-agent/mqtt/gateway.pem"
    key_file = "/etc/edge-agent/mqtt/gateway.key"

Every field has a default and a plain type (str, int, float, bool, or
``str | None``), so the generic section loader of :mod:`edge_agent.config`
can read it and environment overrides work. :meth:`MqttConfig.validate`
names the field, the value and what is allowed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .errors import MqttConfigError

__all__ = ["MqttConfig", "Topics"]

# MQTT keepalive bounds in seconds: below 5 s a slow uplink drops healthy
# sessions; above 20 minutes a dead gateway shows as online for too long.
MIN_KEEPALIVE_S = 5
MAX_KEEPALIVE_S = 1200


@dataclass(frozen=True)
class MqttConfig:
    """How a gateway reaches its broker.

    ``tls_server_name`` is the name the broker's certificate must carry; set
    it when ``host`` is an IP address or an alias the certificate does not
    list. TLS verification is never switched off: without TLS (``tls =
    false``, tests and closed networks only) no certificate is checked at
    all, and the broker should refuse such clients.
    """

    enabled: bool = False
    host: str = "localhost"
    port: int = 8883
    gateway_id: str = ""
    # Client id in the broker; the gateway id when empty.
    client_id: str = ""
    tls: bool = True
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    tls_server_name: str | None = None
    keepalive_s: int = 30
    connect_timeout_s: float = 10.0
    backoff_min_s: float = 1.0
    backoff_max_s: float = 120.0
    # How long the broker keeps the gateway's session (its command
    # subscription and queued commands) while the gateway is away.
    session_expiry_s: int = 7 * 24 * 3600
    max_inflight: int = 20
    gateways_prefix: str = "gateways"
    models_prefix: str = "models"

    @property
    def broker(self) -> str:
        """Return ``host:port`` for messages."""
        return f"{self.host}:{self.port}"

    @property
    def effective_client_id(self) -> str:
        """Return the client id sent to the broker."""
        return self.client_id or self.gateway_id

    def topics(self) -> Topics:
        """Return the topics of this gateway."""
        return Topics(self.gateways_prefix, self.models_prefix, self.gateway_id)

    def validate(self) -> MqttConfig:
        """Check every field; return self.

        Raises:
            MqttConfigError: the first bad field, with its value and the rule.
        """
        _require(bool(self.host), "host", self.host, "a host name or IP address")
        _require(0 < self.port < 65536, "port", self.port, "1..65535")
        _require(
            _is_topic_level(self.gateway_id),
            "gateway_id",
            self.gateway_id,
            "a non-empty id without '/', '+', '#'",
        )
        for name in ("gateways_prefix", "models_prefix"):
            value = getattr(self, name)
            _require(
                bool(value) and "+" not in value and "#" not in value,
                name,
                value,
                "a topic prefix without wildcards",
            )
        _require(
            MIN_KEEPALIVE_S <= self.keepalive_s <= MAX_KEEPALIVE_S,
            "keepalive_s",
            self.keepalive_s,
            f"{MIN_KEEPALIVE_S}..{MAX_KEEPALIVE_S}",
        )
        _require(
            self.connect_timeout_s > 0,
            "connect_timeout_s",
            self.connect_timeout_s,
            "> 0",
        )
        _require(
            0 < self.backoff_min_s <= self.backoff_max_s,
            "backoff_min_s",
            self.backoff_min_s,
            f"> 0 and <= backoff_max_s ({self.backoff_max_s})",
        )
        _require(self.max_inflight >= 1, "max_inflight", self.max_inflight, ">= 1")
        _require(
            self.session_expiry_s >= 0,
            "session_expiry_s",
            self.session_expiry_s,
            ">= 0",
        )
        if self.tls:
            self._validate_tls_files()
        return self

    def _validate_tls_files(self) -> None:
        if (self.cert_file is None) != (self.key_file is None):
            raise MqttConfigError(
                "mqtt: cert_file and key_file go together; "
                f"found cert_file={self.cert_file!r}, key_file={self.key_file!r}"
            )
        for name in ("ca_file", "cert_file", "key_file"):
            value = getattr(self, name)
            if value is not None and not Path(value).is_file():
                raise MqttConfigError(f"mqtt: {name} = {value!r}: no such file")


@dataclass(frozen=True)
class Topics:
    """The topics one gateway publishes and subscribes to."""

    gateways_prefix: str
    models_prefix: str
    gateway_id: str

    @property
    def status(self) -> str:
        """Return the retained status topic."""
        return f"{self.gateways_prefix}/{self.gateway_id}/status"

    @property
    def events(self) -> str:
        """Return the events topic."""
        return f"{self.gateways_prefix}/{self.gateway_id}/events"

    @property
    def commands(self) -> str:
        """Return the topic the cloud sends this gateway's commands on."""
        return f"{self.gateways_prefix}/{self.gateway_id}/commands"

    @property
    def announcements(self) -> str:
        """Return the subscription filter for model announcements."""
        return f"{self.models_prefix}/+/announce"

    def model_name_of(self, topic: str) -> str | None:
        """Return the model name of an announcement topic, None for others."""
        parts = topic.split("/")
        prefix = self.models_prefix.split("/")
        if (
            len(parts) == len(prefix) + 2
            and parts[: len(prefix)] == prefix
            and parts[-1] == "announce"
        ):
            return parts[-2]
        return None


def _is_topic_level(value: str) -> bool:
    return bool(value) and not any(char in value for char in "/+#")


def _require(ok: bool, name: str, value: object, rule: str) -> None:
    if not ok:
        raise MqttConfigError(f"mqtt: {name} = {value!r}: expected {rule}")
