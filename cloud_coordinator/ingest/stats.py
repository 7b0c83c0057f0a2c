"""Counters of an ingest worker, shared by its threads."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field, fields

__all__ = ["IngestStats"]


@dataclass
class IngestStats:
    """What a worker did since it started."""

    events: int = 0
    duplicates: int = 0
    objects_catalogued: int = 0
    objects_unchanged: int = 0
    quarantined: int = 0
    retries: int = 0
    reconciled: int = 0
    published: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, **counts: int) -> None:
        """Add to counters by name."""
        with self._lock:
            for name, value in counts.items():
                setattr(self, name, getattr(self, name) + value)

    def snapshot(self) -> dict[str, int]:
        """Return the counters."""
        with self._lock:
            return {
                item.name: getattr(self, item.name)
                for item in fields(self)
                if not item.name.startswith("_")
            }
