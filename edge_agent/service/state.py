"""What the agent tells about itself: the state file and the MQTT status info.

**State file.** After each cycle the agent writes ``agent-state.json`` in
its workdir: activity, held-back work and why, power and uplink, model,
last cycle, last error. The write is atomic (a temporary file renamed over
the old one) but not fsynced: the file is advisory, and a crash loses at
most the last update. It is rewritten when anything other than the cycle
count and time changed, otherwise at most every ``STATE_REFRESH_S``, so a
30 s idle loop does not write flash twice a minute. ``edge-agent status``
reads it, from another process and possibly another user.

**MQTT status.** :func:`status_info` builds the agent's part of
``gateway-status/1`` (see :mod:`edge_agent.mqtt.status`) from the buffer
and the last cycle.

Exception tree: none raised by writing (failures are logged); reading
raises ``ValueError`` naming the file when it is not the agent's JSON.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from edge_agent.custody import CustodyBuffer, LogState
from edge_agent.processing import SOFTWARE_VERSION

__all__ = [
    "STATE_FILE",
    "STATE_SCHEMA",
    "StateFile",
    "read_agent_state",
    "status_info",
    "utc_now",
]

_LOGGER = logging.getLogger(__name__)

STATE_FILE = "agent-state.json"
STATE_SCHEMA = "edge-agent-state/1"
# Rewrite an unchanged state file this often (seconds): status shows a fresh
# "updated" time without writing flash on every idle cycle.
STATE_REFRESH_S = 300.0
# Keys that change every cycle; a change in them alone waits for the refresh.
_VOLATILE_KEYS = ("cycles", "last_cycle_utc")


def utc_now() -> str:
    """Return the current UTC time as ISO 8601, to the second."""
    return datetime.now(UTC).isoformat(timespec="seconds")


class StateFile:
    """The agent's state file in ``workdir``, written with a refresh limit."""

    def __init__(self, workdir: Path, clock: Any = time.monotonic) -> None:
        """Write to ``workdir/agent-state.json``."""
        self.path = workdir / STATE_FILE
        self._clock = clock
        self._last: tuple[str, float] | None = None

    def write(self, document: Mapping[str, Any], *, force: bool = False) -> bool:
        """Write ``document`` (schema added) unless unchanged; never raises.

        Returns True when the file was written.
        """
        steady = {k: v for k, v in document.items() if k not in _VOLATILE_KEYS}
        key = json.dumps(steady, sort_keys=True, default=str)
        now = self._clock()
        last = self._last
        if not force and last and last[0] == key and now - last[1] < STATE_REFRESH_S:
            return False
        full = {"schema": STATE_SCHEMA, **document, "updated_utc": utc_now()}
        temporary = self.path.with_name(f".{STATE_FILE}.{os.getpid()}")
        try:
            temporary.write_text(json.dumps(full, indent=2, default=str) + "\n")
            os.replace(temporary, self.path)
        except OSError as exc:
            _LOGGER.warning("state file %s not written: %s", self.path, exc)
            return False
        self._last = (key, now)
        return True


def read_agent_state(workdir: Path) -> dict[str, Any] | None:
    """Return the state file a running (or stopped) agent left, if any.

    Raises:
        ValueError: the file is not the agent's JSON (names the file).
    """
    path = workdir / STATE_FILE
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not JSON: {exc}") from exc
    if not isinstance(document, dict) or document.get("schema") != STATE_SCHEMA:
        raise ValueError(f"{path}: expected schema {STATE_SCHEMA!r}")
    return document


def status_info(
    buffer: CustodyBuffer,
    *,
    activity: str,
    model_version: str | None,
    held_back: Mapping[str, str],
) -> dict[str, Any]:
    """Return the agent's part of the MQTT status (``gateway-status/1``)."""
    counts = buffer.counts_by_state()
    space = buffer.space_status() if hasattr(buffer, "space_status") else None
    last_sync = buffer.last_upload_time()
    return {
        "activity": activity,
        "model_version": model_version,
        "buffer": {state.value: counts.get(state, 0) for state in LogState},
        "disk_used_bytes": (
            buffer.disk_usage_bytes() if space is None else space.used_bytes
        ),
        "disk_free_bytes": None if space is None else space.free_bytes,
        "disk_limit_bytes": None if space is None else space.budget_bytes,
        "last_sync_utc": None if last_sync is None else last_sync.isoformat(),
        "held_back": dict(held_back),
        "software_version": SOFTWARE_VERSION,
    }
