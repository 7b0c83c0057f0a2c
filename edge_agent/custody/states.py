"""Custody states of a log and the transitions between them.

A log moves forward only::

    pulling -> pulled -> processed -> uploaded -> released -> purged
       \\          \\          \\
        +----------+----------+--> quarantined

``quarantined`` keeps the bytes aside with a reason. A log quarantined while
it was being pulled may be pulled again from the start (the suit still holds
it), which is the one way back to ``pulling``; an imported file that was
refused goes back to ``pulled`` when the operator imports it again (a fresh
copy of the operator's file, perhaps with other unit options).

Start-up recovery takes two more steps back that no caller can ask for: a
``processed`` log whose outputs vanished goes back to ``pulled`` (processed
again), and a ``pulled`` log whose index row was rebuilt from disk goes back
to ``pulling`` when the suit announces it longer than the bytes held.
"""

from __future__ import annotations

import enum

__all__ = ["ALLOWED_TRANSITIONS", "LogState", "WorkAction", "next_action"]


class LogState(enum.StrEnum):
    """Where a log is on its way from the suit to object storage."""

    PULLING = "pulling"
    PULLED = "pulled"
    PROCESSED = "processed"
    UPLOADED = "uploaded"
    RELEASED = "released"
    PURGED = "purged"
    QUARANTINED = "quarantined"


class WorkAction(enum.StrEnum):
    """What the agent has to do next for a log in a given state."""

    RESUME_PULL = "resume_pull"
    PROCESS = "process"
    UPLOAD = "upload"
    RELEASE = "release"
    PURGE = "purge"


ALLOWED_TRANSITIONS: dict[LogState, frozenset[LogState]] = {
    LogState.PULLING: frozenset({LogState.PULLED, LogState.QUARANTINED}),
    LogState.PULLED: frozenset({LogState.PROCESSED, LogState.QUARANTINED}),
    LogState.PROCESSED: frozenset({LogState.UPLOADED, LogState.QUARANTINED}),
    LogState.UPLOADED: frozenset({LogState.RELEASED}),
    LogState.RELEASED: frozenset({LogState.PURGED}),
    LogState.PURGED: frozenset(),
    LogState.QUARANTINED: frozenset({LogState.PULLING, LogState.PULLED}),
}

_ACTIONS: dict[LogState, WorkAction] = {
    LogState.PULLING: WorkAction.RESUME_PULL,
    LogState.PULLED: WorkAction.PROCESS,
    LogState.PROCESSED: WorkAction.UPLOAD,
    LogState.UPLOADED: WorkAction.RELEASE,
    LogState.RELEASED: WorkAction.PURGE,
}


def next_action(state: LogState) -> WorkAction | None:
    """Return the work a log in ``state`` is waiting for, or None when done."""
    return _ACTIONS.get(state)
