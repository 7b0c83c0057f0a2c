"""Hand inbound messages to the agent, or keep them aside with the reason."""

from __future__ import annotations

import logging
from collections.abc import Callable

import paho.mqtt.client as mqtt

from .config import Topics
from .errors import MqttPayloadError, OutboxError
from .inbound import InboundMessage, parse_inbound
from .outbox import InboundQuarantine
from .stats import LinkStats

__all__ = ["InboundDispatcher", "InboundHandler"]

_LOGGER = logging.getLogger(__name__)

InboundHandler = Callable[[InboundMessage], None]


class InboundDispatcher:
    """Check each inbound message; call the handler or quarantine it.

    Runs on the link thread. A message that breaks its schema, or on which
    the handler raises, is stored in the inbound quarantine and counted;
    the link keeps running either way.
    """

    def __init__(
        self,
        topics: Topics,
        quarantine: InboundQuarantine,
        stats: LinkStats,
        handler: InboundHandler | None,
        label: str,
    ) -> None:
        self.topics = topics
        self.quarantine = quarantine
        self.stats = stats
        self.handler = handler
        self.label = label

    def __call__(self, message: mqtt.MQTTMessage) -> None:
        """Dispatch one message from paho."""
        topic = message.topic
        payload = bytes(message.payload)
        try:
            parsed = parse_inbound(self.topics, topic, payload, retained=message.retain)
        except MqttPayloadError as exc:
            self.stats.inbound_rejected += 1
            self._keep_aside(topic, payload, str(exc))
            return
        if parsed is None:
            return
        self.stats.inbound_accepted += 1
        if self.handler is None:
            return
        try:
            self.handler(parsed)
        except Exception as exc:
            self.stats.handler_errors += 1
            _LOGGER.exception("%s: handler failed on %s", self.label, topic)
            self._keep_aside(
                topic, payload, f"handler failed: {type(exc).__name__}: {exc}"
            )

    def _keep_aside(self, topic: str, payload: bytes, reason: str) -> None:
        try:
            entry_id = self.quarantine.add(topic, payload, reason)
        except OutboxError as exc:
            _LOGGER.error(
                "%s: message on %s rejected (%s) and could not be kept: %s",
                self.label,
                topic,
                reason,
                exc,
            )
            return
        _LOGGER.error(
            "%s: message rejected, kept as inbound quarantine entry %d: %s",
            self.label,
            entry_id,
            reason,
        )
