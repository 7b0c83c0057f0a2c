"""Helpers for the custody tests: synthetic logs, pulling them, fake outputs."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from edge_agent.custody import CustodyBuffer

SUIT = "SUIT-0001"


@dataclass(frozen=True)
class FakeLog:
    """Bytes of a log as a suit would announce them."""

    log_id: str
    data: bytes

    @property
    def sha256_hex(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    @property
    def size_bytes(self) -> int:
        return len(self.data)


def make_log(log_id: str, size_bytes: int = 50_000) -> FakeLog:
    """Return a log of pseudo-random bytes (seeded by the id)."""
    seed = hashlib.sha256(log_id.encode()).digest()
    blocks = bytearray()
    counter = 0
    while len(blocks) < size_bytes:
        blocks += hashlib.sha256(seed + counter.to_bytes(8, "big")).digest()
        counter += 1
    return FakeLog(log_id, bytes(blocks[:size_bytes]))


def pull(
    buffer: CustodyBuffer,
    log: FakeLog,
    *,
    chunk_bytes: int = 8192,
    upto: int | None = None,
) -> int:
    """Pull ``log`` into ``buffer`` from its resume point; return the end offset."""
    offset = buffer.begin_log(SUIT, log.log_id, log.size_bytes, log.sha256_hex)
    end = log.size_bytes if upto is None else upto
    while offset < end:
        piece = log.data[offset : min(offset + chunk_bytes, end)]
        buffer.append_log_bytes(log.log_id, offset, piece)
        offset += len(piece)
    if offset == log.size_bytes:
        buffer.complete_log(log.log_id)
    return offset


def write_outputs(buffer: CustodyBuffer, log_id: str) -> dict[str, Path]:
    """Write the two outputs processing produces into the log's output dir."""
    folder = buffer.output_dir(log_id)
    csv = folder / f"{log_id}.csv.gz"
    csv.write_bytes(b"\x1f\x8b" + os.urandom(2000))
    analytics = folder / f"{log_id}.json"
    analytics.write_text(json.dumps({"schema": "ride-analytics/1", "log_id": log_id}))
    return {"raw_csv": csv, "analytics": analytics}


def suit_log(log_id: str, data: bytes) -> FakeLog:
    """Return a real suit log's bytes announced under ``log_id``."""
    return FakeLog(log_id, data)


def drive(
    buffer: CustodyBuffer, log: FakeLog, state: str, *, crash: bool = False
) -> None:
    """Pull ``log`` and move it forward to ``state`` (a LogState value)."""
    order = ["pulled", "processed", "uploaded", "released", "purged"]
    if state == "pulling":
        pull(buffer, log, upto=log.size_bytes // 2)
        return
    pull(buffer, log, chunk_bytes=256 * 1024)
    for reached in order[1 : order.index(state) + 1]:
        if reached == "processed":
            outputs = write_outputs(buffer, log.log_id)
            buffer.mark_processed(log.log_id, outputs, {"samples": 1}, crash)
        elif reached == "uploaded":
            buffer.mark_uploaded(log.log_id, {"raw_csv": f"raw/{log.log_id}"})
        elif reached == "released":
            buffer.mark_released(log.log_id)
        else:
            buffer.purge(log.log_id)
