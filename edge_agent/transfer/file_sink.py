"""A LogSink that keeps each pulled log as a file, fsynced after every append.

Layout in the sink's directory::

    <log_id>.json   suit serial, size, SHA-256 and state ("pulling"/"pulled")
    <log_id>.part   bytes received so far, in order
    <log_id>.log    the complete, verified log (renamed from .part)

It is the reference implementation of :class:`~edge_agent.transfer.LogSink`
used by the transfer's tests and benchmark; the custody buffer implements the
same protocol on its own storage.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
from pathlib import Path

from firmware_bridge.ble.protocol import normalize_log_id, normalize_sha256

__all__ = ["FileLogSink", "SinkError"]

_LOGGER = logging.getLogger(__name__)

# Read size while hashing a finished log.
_HASH_BLOCK_BYTES = 1 << 20


class SinkError(Exception):
    """Refuse an append or completion that would corrupt a stored log."""


class FileLogSink:
    """Store logs under ``directory``, one file per log, fsync on every append."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self.append_calls = 0
        self.bytes_appended = 0
        self._lock = threading.Lock()

    def _meta_path(self, log_id: str) -> Path:
        return self.directory / f"{log_id}.json"

    def part_path(self, log_id: str) -> Path:
        """Return where the bytes of an unfinished log are kept."""
        return self.directory / f"{log_id}.part"

    def log_path(self, log_id: str) -> Path:
        """Return where a finished, verified log is kept."""
        return self.directory / f"{log_id}.log"

    def _read_meta(self, log_id: str) -> dict[str, object]:
        path = self._meta_path(log_id)
        try:
            meta: dict[str, object] = json.loads(path.read_text())
        except FileNotFoundError:
            raise SinkError(f"{path}: log {log_id} was never begun") from None
        return meta

    def _write_meta(self, log_id: str, meta: dict[str, object]) -> None:
        path = self._meta_path(log_id)
        temporary = path.with_suffix(".json.tmp")
        with temporary.open("w") as handle:
            json.dump(meta, handle)
            handle.flush()
            os.fsync(handle.fileno())
        temporary.replace(path)
        self._fsync_directory()

    def _fsync_directory(self) -> None:
        descriptor = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)

    def begin_log(
        self, suit_serial: str, log_id: str, size_bytes: int, sha256_hex: str
    ) -> int:
        """Register the log (idempotent); return the bytes already stored."""
        log_id = normalize_log_id("begin_log", log_id)
        sha256_hex = normalize_sha256("begin_log", sha256_hex)
        with self._lock:
            if self._meta_path(log_id).exists():
                meta = self._read_meta(log_id)
                if (meta["size_bytes"], meta["sha256"]) != (size_bytes, sha256_hex):
                    raise SinkError(
                        f"{self._meta_path(log_id)}: log {log_id} registered with "
                        f"size {meta['size_bytes']} sha256 {meta['sha256']}, "
                        f"begun again with size {size_bytes} sha256 {sha256_hex}"
                    )
                if meta["state"] == "pulled":
                    return size_bytes
            else:
                self._write_meta(
                    log_id,
                    {
                        "suit_serial": suit_serial,
                        "size_bytes": size_bytes,
                        "sha256": sha256_hex,
                        "state": "pulling",
                    },
                )
            part = self.part_path(log_id)
            if not part.exists():
                part.touch()
                self._fsync_directory()
            return part.stat().st_size

    def append_log_bytes(self, log_id: str, offset: int, data: bytes) -> None:
        """Append ``data`` at ``offset`` (the durable end) and fsync it."""
        with self._lock:
            part = self.part_path(log_id)
            end = part.stat().st_size if part.exists() else 0
            if offset != end:
                raise SinkError(
                    f"{part}: append at offset {offset}, expected the durable end {end}"
                )
            with part.open("ab") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            self.append_calls += 1
            self.bytes_appended += len(data)

    def complete_log(self, log_id: str) -> None:
        """Check size and SHA-256, then mark the log pulled; raise on mismatch."""
        with self._lock:
            meta = self._read_meta(log_id)
            if meta["state"] == "pulled":
                return
            part = self.part_path(log_id)
            digest = hashlib.sha256()
            size = 0
            with part.open("rb") as handle:
                while block := handle.read(_HASH_BLOCK_BYTES):
                    digest.update(block)
                    size += len(block)
            if size != meta["size_bytes"] or digest.hexdigest() != meta["sha256"]:
                raise SinkError(
                    f"{part}: log {log_id} has {size} bytes sha256 "
                    f"{digest.hexdigest()}, expected {meta['size_bytes']} bytes "
                    f"sha256 {meta['sha256']}"
                )
            part.replace(self.log_path(log_id))
            meta["state"] = "pulled"
            self._write_meta(log_id, meta)
            _LOGGER.info("log %s: %d bytes verified and stored", log_id, size)

    def read_log(self, log_id: str) -> bytes:
        """Return a finished log's bytes."""
        return self.log_path(log_id).read_bytes()
