"""Fault injection and counters of the emulated suit, for tests and benchmarks.

Faults model what a real link does to a transfer: a notification the
gateway's stack drops (the suit thinks it was sent), and a link that breaks
after a number of bytes.
"""

from __future__ import annotations

import dataclasses

__all__ = ["StreamRecord", "SuitFaults", "SuitStats"]


@dataclasses.dataclass
class SuitFaults:
    """Arm the faults the suit applies to its data stream."""

    drop_chunk_indexes: set[int] = dataclasses.field(default_factory=set)
    dead_log_offsets: set[int] = dataclasses.field(default_factory=set)
    disconnect_after_payload_bytes: int | None = None
    _payload_bytes_since_armed: int = 0

    def drop_chunk_once(self, chunk_index: int) -> None:
        """Lose the next notification of chunk ``chunk_index`` of any stream."""
        self.drop_chunk_indexes.add(chunk_index)

    def drop_offset_always(self, log_offset: int) -> None:
        """Lose every chunk that carries log byte ``log_offset`` (a dead spot)."""
        self.dead_log_offsets.add(log_offset)

    def disconnect_after_bytes(self, payload_bytes: int) -> None:
        """Drop the link once this many more payload bytes have been sent."""
        self.disconnect_after_payload_bytes = payload_bytes
        self._payload_bytes_since_armed = 0

    def take_drop(self, chunk_index: int, log_offset: int, size: int) -> bool:
        """Return True if this chunk must be lost this time."""
        if any(
            log_offset <= dead < log_offset + size for dead in self.dead_log_offsets
        ):
            return True
        if chunk_index in self.drop_chunk_indexes:
            self.drop_chunk_indexes.discard(chunk_index)
            return True
        return False

    def take_disconnect(self, payload_bytes: int) -> bool:
        """Count sent bytes; return True (once) when the link must drop."""
        if self.disconnect_after_payload_bytes is None:
            return False
        self._payload_bytes_since_armed += payload_bytes
        if self._payload_bytes_since_armed >= self.disconnect_after_payload_bytes:
            self.disconnect_after_payload_bytes = None
            return True
        return False


@dataclasses.dataclass(frozen=True, slots=True)
class StreamRecord:
    """Describe one READ_LOG stream the suit served."""

    log_id: str
    offset: int
    length: int
    att_mtu: int
    chunk_payload_bytes: int
    window_chunks: int


@dataclasses.dataclass
class SuitStats:
    """Count what the suit sent (dropped chunks count as not sent)."""

    chunks_sent: int = 0
    chunks_resent: int = 0
    chunks_dropped: int = 0
    payload_bytes_sent: int = 0
    att_bytes_sent: int = 0
    payload_bytes_by_log: dict[str, int] = dataclasses.field(default_factory=dict)
    streams: list[StreamRecord] = dataclasses.field(default_factory=list)
    connections: int = 0
    acks_received: int = 0
    nacks_received: int = 0
    encrypted_links: int = 0
    commands_refused: int = 0
