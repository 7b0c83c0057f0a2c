"""Acknowledge messages in the order they arrived, once each is committed.

MQTT asks a receiver to send PUBACKs in the order the PUBLISH packets came
in. Worker threads finish messages in any order, so :class:`AckSequencer`
holds a finished message back until every earlier one is finished too.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable

from ..broker import InboundMessage

__all__ = ["AckSequencer"]


class AckSequencer:
    """Release acknowledgements in arrival order."""

    def __init__(self, ack: Callable[[InboundMessage], None]) -> None:
        """Call ``ack`` for each message, in arrival order, once finished."""
        self._ack = ack
        self._lock = threading.Lock()
        self._next = 0
        self._pending: OrderedDict[int, tuple[InboundMessage, bool]] = OrderedDict()

    def arrived(self, message: InboundMessage) -> int:
        """Register a message as it arrives; return its ticket."""
        with self._lock:
            ticket = self._next
            self._next += 1
            self._pending[ticket] = (message, False)
            return ticket

    def finished(self, ticket: int) -> None:
        """Mark a message committed; ack it and any finished ones after it."""
        ready: list[InboundMessage] = []
        with self._lock:
            message, _ = self._pending[ticket]
            self._pending[ticket] = (message, True)
            while self._pending:
                first = next(iter(self._pending))
                message, done = self._pending[first]
                if not done:
                    break
                del self._pending[first]
                ready.append(message)
            # Acks go out under the lock so that they leave in order.
            for item in ready:
                self._ack(item)

    def forget(self, ticket: int) -> None:
        """Drop a message that will not be acknowledged (worker stopping)."""
        with self._lock:
            self._pending.pop(ticket, None)

    @property
    def waiting(self) -> int:
        """Return how many messages await their acknowledgement."""
        with self._lock:
            return len(self._pending)
