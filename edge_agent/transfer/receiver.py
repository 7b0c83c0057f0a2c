"""Put one stream's chunks back in order and decide what to re-request.

No I/O here: the session feeds notifications in and sends the ACKs and NACKs
this object asks for.  Bytes leave only in order (``take_in_order``), so a
gap is never handed to the sink.  A chunk is missing when a later one
arrives (notifications on one ATT bearer are ordered, so a skipped sequence
number means a lost notification), when STREAM_END arrives before it, or
when the stream goes idle with it outstanding.
"""

from __future__ import annotations

import logging

from firmware_bridge.ble.protocol import (
    MAX_WINDOW_CHUNKS,
    ChecksumError,
    MalformedMessageError,
    ReadLogReply,
    decode_chunk,
    unwrap_seq,
)

__all__ = ["NackRange", "StreamReceiver"]

_LOGGER = logging.getLogger(__name__)

NackRange = tuple[int, int]
"""(first chunk index, count) to request again."""


def _ranges(indexes: list[int]) -> list[NackRange]:
    ranges: list[NackRange] = []
    for index in indexes:
        if (
            ranges
            and ranges[-1][0] + ranges[-1][1] == index
            and ranges[-1][1] < MAX_WINDOW_CHUNKS
        ):
            ranges[-1] = (ranges[-1][0], ranges[-1][1] + 1)
        else:
            ranges.append((index, 1))
    return ranges


class StreamReceiver:
    """Reassemble one READ_LOG stream described by its reply."""

    def __init__(self, reply: ReadLogReply) -> None:
        self.log_id = reply.log_id
        self.offset = reply.offset
        self.length = reply.length
        self.payload_bytes = reply.chunk_payload_bytes
        self.chunk_count = reply.chunk_count
        self.window_chunks = reply.window_chunks
        self.expected = 0
        self.highest_seen = -1
        self.stream_end_seen = False
        self.duplicates = 0
        self.crc_errors = 0
        self.payload_bytes_received = 0
        self._pending: dict[int, bytes] = {}
        self._requested: set[int] = set()
        self._in_order = bytearray()

    @property
    def complete(self) -> bool:
        """Return True once every chunk arrived in order."""
        return self.expected >= self.chunk_count

    @property
    def in_order_pending_bytes(self) -> int:
        """Return in-order bytes received but not yet taken."""
        return len(self._in_order)

    @property
    def in_order_end(self) -> int:
        """Return the log offset just after the last in-order byte received."""
        return min(
            self.offset + self.expected * self.payload_bytes, self.offset + self.length
        )

    def _span(self, index: int) -> tuple[int, int]:
        offset = self.offset + index * self.payload_bytes
        return offset, min(self.payload_bytes, self.offset + self.length - offset)

    def feed(self, frame: bytes | bytearray) -> list[NackRange]:
        """Take one data notification; return ranges to re-request now.

        Raises:
            MalformedMessageError: a chunk with a valid CRC but a sequence
                number, offset or size this stream cannot have (a suit bug,
                not radio noise).
        """
        try:
            chunk = decode_chunk(frame)
        except ChecksumError as error:
            # The seq itself is untrustworthy; the gap shows up when the next
            # good chunk arrives.
            self.crc_errors += 1
            _LOGGER.warning("log %s: dropped chunk: %s", self.log_id, error)
            return []
        expected = self.expected
        index = unwrap_seq(chunk.seq, expected)
        if index < expected or index in self._pending:
            self.duplicates += 1
            return []
        limit = min(self.chunk_count, expected + MAX_WINDOW_CHUNKS)
        if index >= limit:
            raise MalformedMessageError("data chunk", "seq", f"< {limit}", index, 0)
        offset, size = self._span(index)
        if chunk.offset != offset:
            raise MalformedMessageError("data chunk", "offset", offset, chunk.offset, 2)
        if len(chunk.payload) != size:
            raise MalformedMessageError(
                "data chunk",
                "payload",
                f"{size} bytes",
                f"{len(chunk.payload)} bytes",
                6,
            )
        self.payload_bytes_received += size
        if self._requested:
            self._requested.discard(index)

        # A skipped seq: the chunks in between were lost (ordered bearer).
        missing: list[int] = []
        if index > self.highest_seen + 1:
            first_skipped = max(self.highest_seen + 1, expected)
            missing = [
                i
                for i in range(first_skipped, index)
                if i not in self._pending and i not in self._requested
            ]
            self._requested.update(missing)
        if index > self.highest_seen:
            self.highest_seen = index

        if index == expected:
            self._in_order += chunk.payload
            expected += 1
            while expected in self._pending:
                self._in_order += self._pending.pop(expected)
                expected += 1
            self.expected = expected
        else:
            self._pending[index] = chunk.payload
        return _ranges(missing) if missing else []

    def on_stream_end(self) -> list[NackRange]:
        """Note STREAM_END: every chunk still missing was lost; re-request it."""
        self.stream_end_seen = True
        missing = [
            i
            for i in range(self.expected, self.chunk_count)
            if i not in self._pending and i not in self._requested
        ]
        self._requested.update(missing)
        return _ranges(missing)

    def on_idle(self) -> list[NackRange]:
        """Re-request everything outstanding (a re-request may itself be lost)."""
        end = self.chunk_count if self.stream_end_seen else self.highest_seen + 1
        missing = [i for i in range(self.expected, end) if i not in self._pending]
        self._requested.update(missing)
        return _ranges(missing)

    def take_in_order(self) -> bytes:
        """Return and forget the in-order bytes received since the last call."""
        data = bytes(self._in_order)
        self._in_order.clear()
        return data
