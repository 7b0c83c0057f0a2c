"""Values the gateway's transfer API returns: status, log entries, pull figures."""

from __future__ import annotations

import dataclasses

__all__ = ["PullStats", "SuitLogEntry", "SuitStatus"]


@dataclasses.dataclass(frozen=True, slots=True)
class SuitStatus:
    """Report a suit's battery, charging state and number of stored logs."""

    battery_pct: int | None
    charging: bool
    stored_logs: int
    protocol_version: int


@dataclasses.dataclass(frozen=True, slots=True)
class SuitLogEntry:
    """Describe one log on the suit: 32-hex-char id, size and SHA-256."""

    log_id: str
    size_bytes: int
    sha256_hex: str


@dataclasses.dataclass
class PullStats:
    """Count what one async_pull did, for logs and benchmarks."""

    log_id: str
    size_bytes: int
    start_offset: int = 0
    payload_bytes_received: int = 0
    duplicate_chunks: int = 0
    crc_errors: int = 0
    chunks_nacked: int = 0
    reconnects: int = 0
    sink_appends: int = 0
    chunk_payload_bytes: list[int] = dataclasses.field(default_factory=list)
    elapsed_s: float = 0.0
