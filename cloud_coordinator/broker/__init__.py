"""The cloud services' link to the MQTT broker (``[broker]`` configuration).

:class:`CloudMqttClient` connects with TLS and a client certificate (the
cloud service account), publishes JSON documents and waits for their
acknowledgement, and feeds subscribed messages to a handler with optional
manual acknowledgement. :mod:`.topics` builds topic names from the
configured prefixes; :mod:`.errors` draws the exception tree.
"""

from ..config import BrokerConfig
from .client import (
    CONNECT_TIMEOUT_S,
    CloudMqttClient,
    InboundMessage,
    MessageHandler,
    encode_payload,
)
from .errors import (
    BrokerConfigError,
    BrokerError,
    BrokerUnavailable,
    PublishFailed,
    PublishTimeout,
)
from .topics import (
    DEFAULT_INGEST_GROUP,
    cloud_events_topic,
    commands_topic,
    events_subscription,
    gateway_of_events_topic,
)

__all__ = [
    "CONNECT_TIMEOUT_S",
    "DEFAULT_INGEST_GROUP",
    "BrokerConfig",
    "BrokerConfigError",
    "BrokerError",
    "BrokerUnavailable",
    "CloudMqttClient",
    "InboundMessage",
    "MessageHandler",
    "PublishFailed",
    "PublishTimeout",
    "cloud_events_topic",
    "commands_topic",
    "encode_payload",
    "events_subscription",
    "gateway_of_events_topic",
]
