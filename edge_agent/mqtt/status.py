"""Gateway status (``gateways/{id}/status``, retained): build and read.

Schema ``gateway-status/1``::

    {"schema": "gateway-status/1", "gateway_id": "gw-1",
     "state": "online" | "offline", "updated_utc": "<ISO 8601>",
     "reason": null | "shutdown" | "connection lost",
     "activity": "idle", "model_version": "1.2.0",
     "buffer": {"pulled": 1, "processed": 0, ...},
     "disk_used_bytes": 123, "disk_free_bytes": 456, "disk_limit_bytes": null,
     "last_sync_utc": "<ISO 8601>" | null,
     "held_back": {"pull": "suit not charging", "upload": "uplink down"},
     "software_version": "0.1.0",
     "model_update": null | {"version": "1.2.0", "result": "installed",
                             "reason": null, "at_utc": "<ISO 8601>", ...}}

The agent supplies everything after ``reason`` as a dict (:data:`STATUS_FIELDS`
lists the keys and types); unknown keys are refused so a typo cannot leak
into the fleet's dashboards. ``held_back`` maps each kind of work that is
waiting to the gating condition that holds it back; empty when nothing is.

The broker publishes the last will (``state`` offline, ``reason``
"connection lost") when the gateway vanishes without a goodbye. MQTT fixes
the will at CONNECT, so it carries the agent's status as it was when the
connection was made (``updated_utc`` says when), not later updates.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from .errors import MqttPayloadError
from .validation import decode_object, require_field, require_schema

__all__ = [
    "REASON_CONNECTION_LOST",
    "REASON_SHUTDOWN",
    "STATE_OFFLINE",
    "STATE_ONLINE",
    "STATUS_FIELDS",
    "STATUS_SCHEMA",
    "check_status_info",
    "parse_status",
    "status_document",
]

STATUS_SCHEMA = "gateway-status/1"
STATUS_FAMILY = "gateway-status"
STATE_ONLINE = "online"
STATE_OFFLINE = "offline"
REASON_SHUTDOWN = "shutdown"
REASON_CONNECTION_LOST = "connection lost"

# Agent-supplied keys and their JSON types; None in a tuple means nullable.
STATUS_FIELDS: dict[str, tuple[type | None, ...]] = {
    "activity": (str,),
    "model_version": (str, None),
    "buffer": (dict,),
    "disk_used_bytes": (int,),
    "disk_free_bytes": (int, None),
    "disk_limit_bytes": (int, None),
    "last_sync_utc": (str, None),
    "held_back": (dict,),
    "software_version": (str, None),
    # The last model update attempt (edge_agent.modelmgr): version, result
    # (installed, refused, restored), reason, time, shadow-test figures.
    "model_update": (dict, None),
}


def _type_text(types: tuple[type | None, ...]) -> str:
    return " or ".join("null" if kind is None else kind.__name__ for kind in types)


def _check_value(topic: str, name: str, value: Any) -> None:
    allowed = STATUS_FIELDS[name]
    if value is None:
        if None not in allowed:
            raise MqttPayloadError(
                topic, name, f"expected {_type_text(allowed)}, found null"
            )
        return
    kinds = tuple(kind for kind in allowed if kind is not None)
    if not isinstance(value, kinds) or isinstance(value, bool):
        raise MqttPayloadError(
            topic,
            name,
            f"expected {_type_text(allowed)}, found {type(value).__name__}",
        )
    entries: dict[str, Any] = value if isinstance(value, dict) else {}
    if name == "buffer":
        for state, count in entries.items():
            if not isinstance(count, int) or isinstance(count, bool) or count < 0:
                raise MqttPayloadError(
                    topic, f"buffer.{state}", f"expected a count >= 0, found {count!r}"
                )
    if name == "held_back":
        for work, condition in entries.items():
            if not isinstance(condition, str):
                raise MqttPayloadError(
                    topic,
                    f"held_back.{work}",
                    f"expected the gating condition as text, found {condition!r}",
                )


def check_status_info(info: Mapping[str, Any], topic: str) -> dict[str, Any]:
    """Return a JSON-ready copy of agent-supplied status ``info``.

    Raises:
        MqttPayloadError: an unknown key, or a value of the wrong type.
    """
    unknown = sorted(set(info) - set(STATUS_FIELDS))
    if unknown:
        raise MqttPayloadError(
            topic,
            unknown[0],
            f"unknown status key; known keys: {sorted(STATUS_FIELDS)}",
        )
    checked: dict[str, Any] = {}
    for name, value in info.items():
        if hasattr(value, "items") and not isinstance(value, dict):
            value = dict(value)
        _check_value(topic, name, value)
        checked[name] = dict(value) if isinstance(value, dict) else value
    return checked


def status_document(
    gateway_id: str,
    state: str,
    info: Mapping[str, Any],
    *,
    reason: str | None = None,
    updated_utc: str | None = None,
) -> dict[str, Any]:
    """Return the status JSON document; ``info`` must be checked already."""
    document: dict[str, Any] = {
        "schema": STATUS_SCHEMA,
        "gateway_id": gateway_id,
        "state": state,
        "updated_utc": updated_utc
        or datetime.now(UTC).isoformat(timespec="milliseconds"),
        "reason": reason,
    }
    document.update(info)
    return document


def parse_status(topic: str, payload: bytes) -> dict[str, Any]:
    """Return the checked status document in ``payload`` (subscriber side).

    Raises:
        MqttPayloadError: not JSON, or a field breaks ``gateway-status/1``.
    """
    document = decode_object(topic, payload)
    require_schema(document, topic, STATUS_FAMILY)
    require_field(document, topic, "gateway_id", str)
    state = require_field(document, topic, "state", str)
    if state not in (STATE_ONLINE, STATE_OFFLINE):
        raise MqttPayloadError(
            topic, "state", f"expected 'online' or 'offline', found {state!r}"
        )
    info = {key: document[key] for key in STATUS_FIELDS if key in document}
    check_status_info(info, topic)
    return document
