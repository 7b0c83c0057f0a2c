"""The durable destination of pulled log bytes (implemented by the custody buffer).

The puller calls the three methods in order for each log, one call at a
time, from a worker thread unless the session is built with
``sink_io="loop"``.  ``append_log_bytes`` gets contiguous batches of verified
bytes (tens of KiB), never a byte range twice in one run and never beyond a
gap; after a disconnect the pull resumes at what ``begin_log`` returns.
"""

from __future__ import annotations

from typing import Protocol

__all__ = ["LogSink"]


class LogSink(Protocol):
    """Store a log's bytes durably as they arrive from the suit."""

    def begin_log(
        self, suit_serial: str, log_id: str, size_bytes: int, sha256_hex: str
    ) -> int:
        """Register the log (idempotent); return the durable byte offset.

        The offset is where a pull resumes: the bytes stored so far.
        """

    def append_log_bytes(self, log_id: str, offset: int, data: bytes) -> None:
        """Write ``data`` at ``offset`` and fsync it before returning.

        ``offset`` must equal the durable end.
        """

    def complete_log(self, log_id: str) -> None:
        """Verify the whole log's SHA-256 and mark it pulled; raise on mismatch."""
