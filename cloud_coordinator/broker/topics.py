"""Topic names of the cloud side, built from the ``[broker]`` prefixes.

See DESIGN.md's topic table. Gateways publish events on
``{gateways}/{gateway_id}/events``; ingest workers subscribe to them through
a shared subscription (``$share/{group}/...``), so the broker hands each
message to one worker of the group and any number of workers split the load.
"""

from __future__ import annotations

from ..config import BrokerConfig

__all__ = [
    "DEFAULT_INGEST_GROUP",
    "cloud_events_topic",
    "commands_topic",
    "events_subscription",
    "gateway_of_events_topic",
]

# Workers of one group share the events; a second group (a test, an
# auditor) would get its own copy of every event.
DEFAULT_INGEST_GROUP = "ingest"


def events_subscription(config: BrokerConfig, group: str = DEFAULT_INGEST_GROUP) -> str:
    """Return the shared subscription to every gateway's events topic.

    Raises:
        ValueError: ``group`` is empty or holds ``/``, ``+`` or ``#``.
    """
    if not group or any(char in group for char in "/+#"):
        raise ValueError(f"ingest group {group!r}: must be non-empty, without /+#")
    return f"$share/{group}/{config.gateways_prefix}/+/events"


def gateway_of_events_topic(config: BrokerConfig, topic: str) -> str | None:
    """Return the gateway id in an events topic, or None if it is not one."""
    prefix = f"{config.gateways_prefix}/"
    if not topic.startswith(prefix) or not topic.endswith("/events"):
        return None
    gateway_id = topic[len(prefix) : -len("/events")]
    return gateway_id if gateway_id and "/" not in gateway_id else None


def commands_topic(config: BrokerConfig, gateway_id: str) -> str:
    """Return the topic a gateway reads its commands from."""
    return f"{config.gateways_prefix}/{gateway_id}/commands"


def cloud_events_topic(config: BrokerConfig) -> str:
    """Return the topic R&D and technicians follow (crash detected, ...)."""
    return config.cloud_events_topic
