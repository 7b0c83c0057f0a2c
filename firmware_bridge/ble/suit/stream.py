"""Window bookkeeping of one READ_LOG stream on the suit side.

The suit sends chunk ``i`` only while ``i < acked + window``; ``acked`` moves
with the gateway's cumulative ACKs.  Chunks named in a NACK are queued for
resending and go out before any new chunk; they need no credit because they
are already inside the window.
"""

from __future__ import annotations

import asyncio
import collections

from firmware_bridge.ble.suit.store import StoredLog

__all__ = ["SuitStream"]


class SuitStream:
    """Track which chunks of one stream are sent, acknowledged or owed again."""

    def __init__(
        self,
        log: StoredLog,
        offset: int,
        length: int,
        payload_bytes: int,
        window_chunks: int,
    ) -> None:
        self.log = log
        self.offset = offset
        self.length = length
        self.payload_bytes = payload_bytes
        self.window_chunks = window_chunks
        self.chunk_count = -(-length // payload_bytes)
        self.next_new = 0
        self.acked = 0
        self.end_sent = False
        self.wake = asyncio.Event()
        self._resend: collections.deque[int] = collections.deque()
        self._resend_set: set[int] = set()

    @property
    def done(self) -> bool:
        """Return True once the gateway acknowledged every chunk."""
        return self.acked >= self.chunk_count

    @property
    def all_sent(self) -> bool:
        """Return True once every chunk went out at least once."""
        return self.next_new >= self.chunk_count

    def chunk_span(self, index: int) -> tuple[int, int]:
        """Return the log offset and payload size of chunk ``index``."""
        offset = self.offset + index * self.payload_bytes
        return offset, min(self.payload_bytes, self.offset + self.length - offset)

    def take_next(self) -> tuple[int, bool] | None:
        """Return (chunk index, is_resend) to send now, or None to wait."""
        while self._resend:
            index = self._resend.popleft()
            self._resend_set.discard(index)
            if index >= self.acked:
                return index, True
        if self.next_new < self.chunk_count and (
            self.next_new < self.acked + self.window_chunks
        ):
            index = self.next_new
            self.next_new += 1
            return index, False
        return None

    def apply_ack(self, next_index: int) -> bool:
        """Move the window; return False if ``next_index`` was never sent."""
        if next_index > self.next_new:
            return False
        if next_index > self.acked:
            self.acked = next_index
            self.wake.set()
        return True

    def apply_nack(self, first_index: int, count: int) -> bool:
        """Queue chunks to resend; return False if the range was never sent.

        Chunks below ``acked`` arrived after all (the NACK crossed them in
        flight) and are skipped.
        """
        if first_index + count > self.next_new:
            return False
        for index in range(max(first_index, self.acked), first_index + count):
            if index not in self._resend_set:
                self._resend_set.add(index)
                self._resend.append(index)
        self.wake.set()
        return True
