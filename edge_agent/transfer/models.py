"""Values the gateway's transfer API takes and returns.

Status, log entries, pull figures, and the upload receipt a release carries.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from firmware_bridge.ble.protocol import upload_digest

__all__ = ["PullStats", "SuitLogEntry", "SuitStatus", "UploadReceipt"]


@dataclasses.dataclass(frozen=True, slots=True)
class SuitStatus:
    """Report a suit's battery, charging state and number of stored logs."""

    battery_pct: int | None
    charging: bool
    stored_logs: int
    protocol_version: int
    pairing_mode: bool = False
    bond_required: bool = False


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


@dataclasses.dataclass(frozen=True)
class UploadReceipt:
    """Name what the cloud committed for one log, for the suit's release.

    Built from the custody record: ``UploadReceipt(record.object_keys,
    record.output_sha256)``.  The session turns it into the wire receipt
    (its digest plus an HMAC under the bond's release key).
    """

    object_keys: Mapping[str, str]
    """Object name -> ``bucket/key`` as committed (at least one)."""
    object_sha256: Mapping[str, str]
    """Output name -> SHA-256 (hex) of the bytes uploaded."""

    def digest(self) -> bytes:
        """Return the upload digest (docs/ble-protocol.md, section 10).

        Raises:
            ValueError: no object key, an empty name or key, or a bad SHA-256.
        """
        return upload_digest(self.object_keys, self.object_sha256)
