"""Helpers shared by the BLE transfer tests: logs, a recording sink."""

from __future__ import annotations

import random
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

from edge_agent.transfer import FileLogSink
from firmware_bridge.ble.suit import EmulatedSuit

SuitFactory = Callable[..., Awaitable[EmulatedSuit]]
"""Fixture type: start an emulated suit on the test's air and return it."""


def random_logs(seed: int, sizes: list[int]) -> dict[str, bytes]:
    """Return logs of random bytes keyed by fresh 32-hex-char log ids."""
    rng = random.Random(seed)
    return {uuid.UUID(int=rng.getrandbits(128)).hex: rng.randbytes(n) for n in sizes}


class RecordingSink(FileLogSink):
    """A FileLogSink that also records every append and completion."""

    def __init__(self, directory: Path) -> None:
        super().__init__(directory)
        self.appends: list[tuple[str, int, int]] = []
        self.completed: list[str] = []

    def append_log_bytes(self, log_id: str, offset: int, data: bytes) -> None:
        super().append_log_bytes(log_id, offset, data)
        self.appends.append((log_id, offset, len(data)))

    def complete_log(self, log_id: str) -> None:
        super().complete_log(log_id)
        self.completed.append(log_id)

    def stored_bytes(self, log_id: str) -> bytes:
        """Return what is stored for ``log_id``, finished or not."""
        path = self.log_path(log_id)
        if not path.exists():
            path = self.part_path(log_id)
        return path.read_bytes() if path.exists() else b""


def passkey_of(suit: EmulatedSuit) -> Callable[[str], Awaitable[int | None]]:
    """Return a passkey provider that types what ``suit`` displays."""

    async def provide(_address: str) -> int | None:
        return await suit.async_read_passkey()

    return provide
