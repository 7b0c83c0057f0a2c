"""Exceptions raised at the gateway's MQTT boundary.

Hierarchy::

    MqttError
     ├── MqttConfigError             an MqttConfig value is unusable
     ├── MqttPayloadError            a message is not valid JSON or breaks its schema
     ├── OutboxError                 the outbox database cannot be opened or written
     └── BrokerConnectError          no usable session with the broker
          ├── BrokerUnavailableError  unreachable, reset, or silent (no CONNACK)
          ├── BrokerIdentityError     TLS: certificate untrusted or for another name
          └── BrokerRefusedError      the broker answered CONNACK with a failure

paho-mqtt, ``ssl`` and ``sqlite3`` errors are mapped into this tree in one
place each (:mod:`.session`, :mod:`.tls`, :mod:`.store`) with ``raise ... from``.
Every message names the broker (host:port) or the topic and field involved,
and what the operator can do.
"""

from __future__ import annotations

__all__ = [
    "BrokerConnectError",
    "BrokerIdentityError",
    "BrokerRefusedError",
    "BrokerUnavailableError",
    "MqttConfigError",
    "MqttError",
    "MqttPayloadError",
    "OutboxError",
]


class MqttError(Exception):
    """Base class of every error at the MQTT boundary."""


class MqttConfigError(MqttError, ValueError):
    """An MqttConfig value is missing, out of range or inconsistent."""


class MqttPayloadError(MqttError, ValueError):
    """A message payload is not valid JSON or breaks its schema.

    ``topic`` and ``field`` say where; ``field`` is ``None`` when the whole
    payload is unreadable.
    """

    def __init__(self, topic: str, field: str | None, problem: str) -> None:
        where = f"topic {topic!r}" + (f", field {field!r}" if field else "")
        super().__init__(f"{where}: {problem}")
        self.topic = topic
        self.field = field
        self.problem = problem


class OutboxError(MqttError):
    """The outbox database cannot be opened or a change cannot be committed."""


class BrokerConnectError(MqttError):
    """No usable MQTT session with the broker could be set up."""

    def __init__(self, broker: str, message: str) -> None:
        super().__init__(f"broker {broker}: {message}")
        self.broker = broker


class BrokerUnavailableError(BrokerConnectError):
    """The broker is unreachable, reset the link, or sent no CONNACK in time."""


class BrokerIdentityError(BrokerConnectError):
    """The broker's TLS certificate is untrusted or issued for another name."""


class BrokerRefusedError(BrokerConnectError):
    """The broker answered the CONNECT with a failure reason code."""

    def __init__(self, broker: str, message: str, reason_code: int) -> None:
        super().__init__(broker, message)
        self.reason_code = reason_code
