"""Hold the logs an emulated suit keeps until the gateway releases them.

Logs come from memory (``{log_id: bytes}``) or from files, which are mapped
read-only so a 250 MB log costs no RAM.  A log read from a file gets the file
stem as its id when the stem is a UUID, otherwise a UUID derived from the
suit serial and the file name (stable across runs).  Erasing a log removes it
from the suit's catalogue only: the emulator never deletes the input files.
A release that carried a receipt leaves its upload digest and the releasing
gateway behind as evidence (:attr:`SuitLogStore.release_receipts`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import mmap
import uuid
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import BinaryIO

from firmware_bridge.ble.protocol import MAX_LOG_BYTES, normalize_log_id

__all__ = [
    "LOG_ID_NAMESPACE",
    "ReleaseEvidence",
    "StoredLog",
    "SuitLogStore",
    "log_id_for_file",
]

_LOGGER = logging.getLogger(__name__)

# Namespace of the UUIDv5 ids given to log files whose name is not a UUID.
LOG_ID_NAMESPACE = uuid.UUID("7c0e2a4d-9b51-4f63-8d2e-5a1b3c4d6e70")


def log_id_for_file(serial: str, path: Path) -> str:
    """Return the log id the emulated suit gives the file at ``path``."""
    try:
        return uuid.UUID(path.stem).hex
    except ValueError:
        return uuid.uuid5(LOG_ID_NAMESPACE, f"{serial}/{path.name}").hex


@dataclasses.dataclass(frozen=True, slots=True)
class StoredLog:
    """Describe one log on the suit: id, size, SHA-256 and its bytes."""

    log_id: str
    size_bytes: int
    sha256_hex: str
    data: bytes | mmap.mmap

    def read(self, offset: int, length: int) -> bytes:
        """Return ``length`` bytes from ``offset`` (short at the end)."""
        return bytes(self.data[offset : offset + length])


@dataclasses.dataclass(frozen=True, slots=True)
class ReleaseEvidence:
    """Record which gateway released a log, and the upload it named."""

    gateway_address: str
    upload_digest_hex: str


def _describe(log_id: str, data: bytes | mmap.mmap) -> StoredLog:
    if len(data) > MAX_LOG_BYTES:
        raise ValueError(f"log {log_id}: {len(data)} bytes exceeds the 4 GiB limit")
    return StoredLog(
        log_id=log_id,
        size_bytes=len(data),
        sha256_hex=hashlib.sha256(data).hexdigest(),
        data=data,
    )


class SuitLogStore:
    """Keep the suit's logs in order and erase them on release."""

    def __init__(self) -> None:
        self._logs: dict[str, StoredLog] = {}
        self._erased: list[str] = []
        self._receipts: dict[str, ReleaseEvidence] = {}
        self._files: list[tuple[BinaryIO, mmap.mmap]] = []

    @classmethod
    def from_mapping(cls, logs: Mapping[str, bytes]) -> SuitLogStore:
        """Return a store holding in-memory logs keyed by log id."""
        store = cls()
        for log_id, data in logs.items():
            store._add(_describe(normalize_log_id("log store", log_id), bytes(data)))
        return store

    @classmethod
    def from_paths(cls, serial: str, paths: Iterable[Path]) -> SuitLogStore:
        """Return a store holding the given files (a directory means its files)."""
        store = cls()
        files: list[Path] = []
        for path in paths:
            if path.is_dir():
                files.extend(sorted(p for p in path.iterdir() if p.is_file()))
            else:
                files.append(path)
        for path in files:
            handle = path.open("rb")
            try:
                if path.stat().st_size == 0:
                    data: bytes | mmap.mmap = b""
                    handle.close()
                else:
                    data = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
                    store._files.append((handle, data))
            except BaseException:
                handle.close()
                raise
            store._add(_describe(log_id_for_file(serial, path), data))
        return store

    def _add(self, log: StoredLog) -> None:
        if log.log_id in self._logs:
            raise ValueError(f"log id {log.log_id} appears twice")
        self._logs[log.log_id] = log

    def entries(self) -> list[StoredLog]:
        """Return the logs still held, oldest first."""
        return list(self._logs.values())

    def get(self, log_id: str) -> StoredLog | None:
        """Return the log with ``log_id`` or None."""
        return self._logs.get(log_id)

    def erase(self, log_id: str, evidence: ReleaseEvidence | None = None) -> None:
        """Forget ``log_id`` (the gateway released it), keeping the evidence."""
        del self._logs[log_id]
        self._erased.append(log_id)
        if evidence is not None:
            self._receipts[log_id] = evidence

    @property
    def release_receipts(self) -> dict[str, ReleaseEvidence]:
        """Return log id -> evidence of each release that carried a receipt."""
        return dict(self._receipts)

    @property
    def erased_log_ids(self) -> list[str]:
        """Return the ids erased so far, in order."""
        return list(self._erased)

    def close(self) -> None:
        """Unmap and close the log files."""
        self._logs.clear()
        for handle, data in self._files:
            data.close()
            handle.close()
        self._files.clear()
