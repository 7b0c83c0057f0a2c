"""Messages the gateway receives: commands and model announcements.

Commands (``gateways/{id}/commands``, schema ``gateway-command/1``)::

    {"schema": "gateway-command/1", "command_id": "<UUID>",
     "type": "config_change", "settings": {...}}
    {"schema": "gateway-command/1", "command_id": "<UUID>",
     "type": "crash_confirmation", "log_id": "...", "confirmed": true,
     "t_offset_s": 812.5 | null}

Announcements (``models/{model_name}/announce``, retained, schema
``model-announce/1``)::

    {"schema": "model-announce/1", "model_name": "crash-detector",
     "version": "1.3.0", "targets": ["crash-detector-1.3.0.tflite", ...]}

An empty retained payload on an announcement topic only clears the retained
message and is skipped. Anything else that breaks these rules raises
:class:`MqttPayloadError` naming the topic and field.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from .config import Topics
from .errors import MqttPayloadError
from .validation import (
    decode_object,
    optional_field,
    require_field,
    require_schema,
    require_uuid,
)

__all__ = [
    "ANNOUNCE_SCHEMA",
    "COMMAND_SCHEMA",
    "CommandType",
    "InboundKind",
    "InboundMessage",
    "parse_inbound",
]

COMMAND_SCHEMA = "gateway-command/1"
ANNOUNCE_SCHEMA = "model-announce/1"


class InboundKind(StrEnum):
    """Which subscription a message came from."""

    COMMAND = "command"
    MODEL_ANNOUNCE = "model_announce"


class CommandType(StrEnum):
    """Commands the cloud sends a gateway."""

    CONFIG_CHANGE = "config_change"
    CRASH_CONFIRMATION = "crash_confirmation"


@dataclass(frozen=True)
class InboundMessage:
    """A checked message for the agent's handler."""

    kind: InboundKind
    topic: str
    document: dict[str, Any]
    retained: bool


def _check_command(document: dict[str, Any], topic: str) -> None:
    require_schema(document, topic, "gateway-command")
    require_uuid(document, topic, "command_id")
    kind = require_field(document, topic, "type", str)
    if kind == CommandType.CONFIG_CHANGE:
        require_field(document, topic, "settings", dict)
    elif kind == CommandType.CRASH_CONFIRMATION:
        if not require_field(document, topic, "log_id", str):
            raise MqttPayloadError(topic, "log_id", "must not be empty")
        require_field(document, topic, "confirmed", bool)
        optional_field(document, topic, "t_offset_s", (int, float))
    else:
        raise MqttPayloadError(
            topic,
            "type",
            f"expected one of {[member.value for member in CommandType]}, "
            f"found {kind!r}",
        )


def _check_announcement(document: dict[str, Any], topic: str, model_name: str) -> None:
    require_schema(document, topic, "model-announce")
    name = require_field(document, topic, "model_name", str)
    if name != model_name:
        raise MqttPayloadError(
            topic,
            "model_name",
            f"expected {model_name!r} (from the topic), found {name!r}",
        )
    if not require_field(document, topic, "version", str):
        raise MqttPayloadError(topic, "version", "must not be empty")
    targets = require_field(document, topic, "targets", list)
    if not targets:
        raise MqttPayloadError(topic, "targets", "expected at least one target name")
    for index, target in enumerate(targets):
        if not isinstance(target, str) or not target:
            raise MqttPayloadError(
                topic,
                f"targets[{index}]",
                f"expected a target name, found {target!r:.60}",
            )


def parse_inbound(
    topics: Topics, topic: str, payload: bytes, *, retained: bool = False
) -> InboundMessage | None:
    """Return the checked message, or None for a cleared retained message.

    Raises:
        MqttPayloadError: unexpected topic, unreadable payload or a bad field.
    """
    if topic == topics.commands:
        document = decode_object(topic, payload)
        _check_command(document, topic)
        return InboundMessage(InboundKind.COMMAND, topic, document, retained)
    model_name = topics.model_name_of(topic)
    if model_name is not None:
        if not payload:
            return None
        document = decode_object(topic, payload)
        _check_announcement(document, topic, model_name)
        return InboundMessage(InboundKind.MODEL_ANNOUNCE, topic, document, retained)
    raise MqttPayloadError(
        topic,
        None,
        f"not a topic this gateway subscribes to ({topics.commands!r}, "
        f"{topics.announcements!r})",
    )
