"""Apply the cloud's training-related gateway commands to the window store.

Two command types of ``gateway-command/1`` (``gateways/{id}/commands``,
QoS 1) concern federated training:

* ``crash_verdict`` (``rider_id``, ``suit_id``, ``log_id``, ``verdict`` =
  ``confirmed`` | ``rejected``, ``t_offset_s`` number or null): labels the
  windows the gateway kept around a crash it detected;
* ``training_consent`` (``rider_id``, ``opted_out`` bool, ``issued_at``):
  a rider's choice; opting out deletes every window of theirs at once.

QoS 1 may deliver a command twice; both are idempotent (verdicts by
``command_id``, consent by ``issued_at``). Other command types are not
this module's and return ``False``.

Errors: :class:`~edge_agent.fl.errors.CommandError` naming the command id
and field; the caller quarantines the payload and keeps running.
"""

from __future__ import annotations

import logging
import math
import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from .errors import CommandError
from .store import WindowStore

__all__ = ["COMMAND_SCHEMA", "TRAINING_COMMAND_TYPES", "apply_training_command"]

_LOGGER = logging.getLogger(__name__)

COMMAND_SCHEMA = "gateway-command/1"
TRAINING_COMMAND_TYPES = ("crash_verdict", "training_consent")
_VERDICTS = ("confirmed", "rejected")


def _field(document: Mapping[str, Any], command_id: str, name: str, kind: type) -> Any:
    if name not in document:
        raise CommandError(command_id, name, "missing")
    value = document[name]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise CommandError(
            command_id, name, f"expected {kind.__name__}, found {value!r:.60}"
        )
    if isinstance(value, str) and not value:
        raise CommandError(command_id, name, "must not be empty")
    return value


def _issued_at(document: Mapping[str, Any], command_id: str) -> str:
    text = _field(document, command_id, "issued_at", str)
    try:
        datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise CommandError(
            command_id, "issued_at", f"expected ISO-8601, found {text!r:.60}"
        ) from exc
    return str(text)


def apply_training_command(store: WindowStore, document: Mapping[str, Any]) -> bool:
    """Apply one command document if it is a training command.

    Returns:
        True when the command was a training command and is applied (or was
        applied before); False for command types this module does not own.

    Raises:
        CommandError: the schema, command id or a field is wrong.
        WindowStoreError: the store cannot be written.
    """
    raw_id = document.get("command_id")
    command_id = raw_id if isinstance(raw_id, str) else "(no command_id)"
    kind = document.get("type")
    if kind not in TRAINING_COMMAND_TYPES:
        return False
    if document.get("schema") != COMMAND_SCHEMA:
        raise CommandError(
            command_id,
            "schema",
            f"expected {COMMAND_SCHEMA!r}, found {document.get('schema')!r:.60}",
        )
    try:
        uuid.UUID(str(raw_id))
    except ValueError as exc:
        raise CommandError(command_id, "command_id", "expected a UUID") from exc
    rider_id = _field(document, command_id, "rider_id", str)

    if kind == "training_consent":
        opted_out = _field(document, command_id, "opted_out", bool)
        store.set_consent(
            rider_id, opted_out=opted_out, issued_at=_issued_at(document, command_id)
        )
        return True

    log_id = _field(document, command_id, "log_id", str)
    _field(document, command_id, "suit_id", str)
    verdict = _field(document, command_id, "verdict", str)
    if verdict not in _VERDICTS:
        raise CommandError(
            command_id, "verdict", f"expected one of {_VERDICTS}, found {verdict!r:.60}"
        )
    t_offset_s = document.get("t_offset_s")
    if t_offset_s is not None and (
        isinstance(t_offset_s, bool)
        or not isinstance(t_offset_s, int | float)
        or not math.isfinite(t_offset_s)
        or t_offset_s < 0
    ):
        raise CommandError(
            command_id,
            "t_offset_s",
            f"expected a finite number >= 0 or null, found {t_offset_s!r:.60}",
        )
    store.apply_verdict(
        command_id=command_id,
        log_id=log_id,
        confirmed=verdict == "confirmed",
        t_offset_s=None if t_offset_s is None else float(t_offset_s),
    )
    return True
