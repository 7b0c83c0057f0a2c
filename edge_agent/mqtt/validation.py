"""Read JSON payloads field by field, with errors that name topic and field."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from typing import Any

from .errors import MqttPayloadError

__all__ = [
    "decode_object",
    "optional_field",
    "require_field",
    "require_schema",
    "require_uuid",
]

# Largest inbound payload read; commands and announcements are a few hundred
# bytes, so anything near this is a mistake or an attack, not a command.
MAX_PAYLOAD_BYTES = 64 * 1024


def _type_names(types: type | tuple[type, ...]) -> str:
    if isinstance(types, tuple):
        return " or ".join(kind.__name__ for kind in types)
    return types.__name__


def decode_object(topic: str, payload: bytes) -> dict[str, Any]:
    """Return the JSON object in ``payload``.

    Raises:
        MqttPayloadError: too large, not UTF-8, not JSON, or not an object.
    """
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise MqttPayloadError(
            topic,
            None,
            f"payload of {len(payload)} bytes exceeds {MAX_PAYLOAD_BYTES} bytes",
        )
    try:
        document = json.loads(payload.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise MqttPayloadError(
            topic, None, f"payload is not UTF-8 (byte offset {exc.start})"
        ) from exc
    except json.JSONDecodeError as exc:
        raise MqttPayloadError(
            topic,
            None,
            f"payload is not valid JSON: {exc.msg} at line {exc.lineno} "
            f"column {exc.colno} (char {exc.pos})",
        ) from exc
    if not isinstance(document, dict):
        raise MqttPayloadError(
            topic,
            None,
            f"expected a JSON object, found {type(document).__name__}",
        )
    return document


def require_field(
    document: Mapping[str, Any],
    topic: str,
    name: str,
    types: type | tuple[type, ...],
) -> Any:
    """Return ``document[name]`` if present and of ``types``.

    Raises:
        MqttPayloadError: the field is missing or of another type.
    """
    if name not in document:
        raise MqttPayloadError(topic, name, f"missing (expected {_type_names(types)})")
    return optional_field(document, topic, name, types)


def optional_field(
    document: Mapping[str, Any],
    topic: str,
    name: str,
    types: type | tuple[type, ...],
) -> Any:
    """Return ``document[name]`` (None when absent) if of ``types``.

    ``bool`` is not accepted where ``int`` or ``float`` is asked for.

    Raises:
        MqttPayloadError: the field is of another type.
    """
    value = document.get(name)
    if value is None:
        return None
    wanted = types if isinstance(types, tuple) else (types,)
    is_bool_for_number = isinstance(value, bool) and bool not in wanted
    if not isinstance(value, wanted) or is_bool_for_number:
        raise MqttPayloadError(
            topic,
            name,
            f"expected {_type_names(types)}, found {type(value).__name__} "
            f"{value!r:.60}",
        )
    return value


def require_schema(document: Mapping[str, Any], topic: str, family: str) -> str:
    """Return the ``schema`` field if it names a version of ``family``.

    Raises:
        MqttPayloadError: missing, or another family (e.g. ``ride-analytics/1``
            on a command topic).
    """
    schema = require_field(document, topic, "schema", str)
    name, _, version = str(schema).partition("/")
    if name != family or not version.isdigit():
        raise MqttPayloadError(
            topic, "schema", f"expected '{family}/<version>', found {schema!r}"
        )
    return str(schema)


def require_uuid(document: Mapping[str, Any], topic: str, name: str) -> str:
    """Return a field holding a UUID in its canonical text form.

    Raises:
        MqttPayloadError: missing, not a string, or not a UUID.
    """
    text = require_field(document, topic, name, str)
    try:
        parsed = uuid.UUID(text)
    except ValueError as exc:
        raise MqttPayloadError(
            topic, name, f"expected a UUID, found {text!r:.60}"
        ) from exc
    return str(parsed)
