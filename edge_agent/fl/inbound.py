"""The agent's MQTT handler for training commands (``crash_verdict``, consent).

:class:`TrainingCommandHandler` is an ``edge_agent.mqtt`` inbound handler:
the agent chains it after its other handlers, and it applies the commands
of :mod:`.commands` to the window store and ignores everything else. It
runs on the MQTT link thread; each command opens the store, applies the
command in one transaction and closes it, so the SuperNode's ClientApp
(another process) always reads a committed state. A malformed command
raises :class:`~.errors.CommandError`, which the dispatcher quarantines and
counts; the link keeps running.
"""

from __future__ import annotations

import logging
from pathlib import Path

from edge_agent.mqtt.inbound import InboundKind, InboundMessage

from .commands import apply_training_command
from .store import WindowStore

__all__ = ["TrainingCommandHandler"]

_LOGGER = logging.getLogger(__name__)


class TrainingCommandHandler:
    """Apply training commands from ``gateways/{id}/commands`` to the store."""

    def __init__(self, store_path: Path) -> None:
        """Apply commands to the window store at ``store_path``."""
        self.store_path = Path(store_path)
        self.applied = 0

    def __call__(self, message: InboundMessage) -> None:
        """Handle one checked inbound message.

        Raises:
            CommandError: a training command with a missing or malformed field.
            WindowStoreError: the store cannot be written.
        """
        if message.kind is not InboundKind.COMMAND:
            return
        with WindowStore(self.store_path) as store:
            if apply_training_command(store, message.document):
                self.applied += 1
                _LOGGER.info(
                    "%s: %s command %s applied",
                    message.topic,
                    message.document.get("type"),
                    message.document.get("command_id"),
                )
