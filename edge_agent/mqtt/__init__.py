"""The gateway's MQTT link: retained status, durable events, commands.

Start with :class:`GatewayMqttClient`; :mod:`edge_agent.mqtt.errors` draws
the exception tree, :mod:`edge_agent.mqtt.client` the threading design.
"""

from .backoff import Backoff
from .client import GatewayMqttClient
from .config import MqttConfig, Topics
from .dispatch import InboundHandler
from .errors import (
    BrokerConnectError,
    BrokerIdentityError,
    BrokerRefusedError,
    BrokerUnavailableError,
    MqttConfigError,
    MqttError,
    MqttPayloadError,
    OutboxError,
)
from .events import (
    EVENT_SCHEMA,
    EventDeduplicator,
    EventType,
    GatewayEvent,
    event_id_for,
    parse_event,
)
from .inbound import (
    ANNOUNCE_SCHEMA,
    COMMAND_SCHEMA,
    CommandType,
    InboundKind,
    InboundMessage,
    parse_inbound,
)
from .outbox import InboundQuarantine, Outbox, OutboxEntry, QuarantinedMessage
from .stats import LinkStats
from .status import STATUS_FIELDS, STATUS_SCHEMA, parse_status

__all__ = [
    "ANNOUNCE_SCHEMA",
    "COMMAND_SCHEMA",
    "EVENT_SCHEMA",
    "STATUS_FIELDS",
    "STATUS_SCHEMA",
    "Backoff",
    "BrokerConnectError",
    "BrokerIdentityError",
    "BrokerRefusedError",
    "BrokerUnavailableError",
    "CommandType",
    "EventDeduplicator",
    "EventType",
    "GatewayEvent",
    "GatewayMqttClient",
    "InboundHandler",
    "InboundKind",
    "InboundMessage",
    "InboundQuarantine",
    "LinkStats",
    "MqttConfig",
    "MqttConfigError",
    "MqttError",
    "MqttPayloadError",
    "Outbox",
    "OutboxEntry",
    "OutboxError",
    "QuarantinedMessage",
    "Topics",
    "event_id_for",
    "parse_event",
    "parse_inbound",
    "parse_status",
]
