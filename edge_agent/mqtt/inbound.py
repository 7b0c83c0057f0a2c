"""Messages the gateway receives: commands and model announcements.

Commands (``gateways/{id}/commands``, schema ``gateway-command/1``)::

    {"schema": "gateway-command/1", "command_id": "<UUID>",
     "type": "config_change", "settings": {...}}
    {"schema": "gateway-command/1", "command_id": "<UUID>",
     "type": "crash_verdict", "rider_id": "...", "suit_id": "...",
     "log_id": "...", "verdict": "confirmed" | "rejected",
     "t_offset_s": 812.5 | null, "issued_at": "<ISO 8601>"}
    {"schema": "gateway-command/1", "command_id": "<UUID>",
     "type": "training_consent", "rider_id": "...", "opted_out": true,
     "issued_at": "<ISO 8601>"}

``crash_verdict`` is what the cloud publishes when a person confirms or
rejects a detected crash (``cloud_coordinator.crashes.verdicts``), and
``training_consent`` a rider's training choice (``cloud_coordinator.fl``);
``edge_agent.fl`` applies both to the labelled-window store. The earlier
name ``crash_confirmation`` (``confirmed: bool``) meant the same as
``crash_verdict``; nothing publishes it, and it is refused as an unknown type
so one meaning stays.

Announcements (``models/{model_name}/announce``, retained, schema
``model-announce/1``)::

    {"schema": "model-announce/1", "model_name": "crash-detector",
     "version": "1.3.0", "targets": ["crash-detector-1.3.0.tflite", ...]}

An empty retained payload on an announcement topic only clears the retained
message and is skipped. Anything else that breaks these rules raises
:class:`MqttPayloadError` naming the topic and field.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
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
    CRASH_VERDICT = "crash_verdict"
    TRAINING_CONSENT = "training_consent"


_VERDICTS = ("confirmed", "rejected")


@dataclass(frozen=True)
class InboundMessage:
    """A checked message for the agent's handler."""

    kind: InboundKind
    topic: str
    document: dict[str, Any]
    retained: bool


def _require_text(document: dict[str, Any], topic: str, name: str) -> str:
    text = require_field(document, topic, name, str)
    if not text:
        raise MqttPayloadError(topic, name, "must not be empty")
    return str(text)


def _require_time(document: dict[str, Any], topic: str, name: str) -> None:
    text = _require_text(document, topic, name)
    try:
        datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise MqttPayloadError(
            topic, name, f"expected an ISO 8601 time, found {text!r:.60}"
        ) from exc


def _check_command(document: dict[str, Any], topic: str) -> None:
    require_schema(document, topic, "gateway-command")
    require_uuid(document, topic, "command_id")
    kind = require_field(document, topic, "type", str)
    if kind == CommandType.CONFIG_CHANGE:
        require_field(document, topic, "settings", dict)
    elif kind == CommandType.CRASH_VERDICT:
        for name in ("rider_id", "suit_id", "log_id"):
            _require_text(document, topic, name)
        verdict = require_field(document, topic, "verdict", str)
        if verdict not in _VERDICTS:
            raise MqttPayloadError(
                topic,
                "verdict",
                f"expected one of {list(_VERDICTS)}, found {verdict!r:.60}",
            )
        t_offset_s = optional_field(document, topic, "t_offset_s", (int, float))
        if t_offset_s is not None and not (
            math.isfinite(t_offset_s) and t_offset_s >= 0
        ):
            raise MqttPayloadError(
                topic,
                "t_offset_s",
                f"expected a finite number >= 0, found {t_offset_s!r}",
            )
        _require_time(document, topic, "issued_at")
    elif kind == CommandType.TRAINING_CONSENT:
        _require_text(document, topic, "rider_id")
        require_field(document, topic, "opted_out", bool)
        _require_time(document, topic, "issued_at")
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
