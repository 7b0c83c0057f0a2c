"""Errors of the gateway's federated-learning side.

::

    FederatedError
    ├── WindowStoreError      the labelled-window store cannot be read or written
    ├── CommandError          a crash_verdict / training_consent payload is wrong
    ├── NodeConfigError       the SuperNode's --node-config lacks or mistypes a key
    └── TrainingError         the head cannot be trained (no data, bad arrays)
"""

from __future__ import annotations

__all__ = [
    "CommandError",
    "FederatedError",
    "NodeConfigError",
    "TrainingError",
    "WindowStoreError",
]


class FederatedError(Exception):
    """Base of the gateway's federated-learning errors."""


class WindowStoreError(FederatedError):
    """The labelled-window store cannot be opened, read or written."""


class CommandError(FederatedError):
    """A gateway command for training has a missing or malformed field."""

    def __init__(self, command_id: str, field: str, problem: str) -> None:
        """Name the command, the field and what is wrong with it."""
        super().__init__(f"command {command_id}: field {field!r}: {problem}")
        self.command_id = command_id
        self.field = field
        self.problem = problem


class NodeConfigError(FederatedError):
    """The SuperNode's node configuration lacks or mistypes a key."""


class TrainingError(FederatedError):
    """The head cannot be trained or evaluated on this gateway's data."""
