"""One life of the kill test: an emulated suit and the agent in one process.

The suit's flash is a folder of ``.slog`` files plus a ledger of the log ids
it erased after a release (appended and fsynced as soon as the suit erases,
as a suit's own flash would). Each start serves the logs not yet erased; the
agent runs cycles until the suit holds nothing and its buffer has no work.
The orchestrator (``killtest.py``) SIGKILLs this process at random moments.

Usage: python -m tests.stress.kill_worker SUIT_DIR LEDGER CONFIG
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
from collections.abc import Iterator
from pathlib import Path

from edge_agent.config import load_config
from edge_agent.custody import LogState
from edge_agent.service.agent import EdgeAgent
from edge_agent.service.dock import BleBackends
from edge_agent.service.progress import ProgressTask
from edge_agent.service.runtime import open_runtime
from firmware_bridge.ble.bleak_bumble import GatewayRadio
from firmware_bridge.ble.suit import EmulatedSuit, VirtualAir

SERIAL = "SUIT-KILL-01"
# How often the suit's erase ledger is brought up to date.
LEDGER_POLL_S = 0.005
_DONE_STATES = frozenset({LogState.PURGED, LogState.QUARANTINED})


class PhaseFile:
    """A Progress that writes the step under way to a file for the killer."""

    def __init__(self, path: Path) -> None:
        self._path = path

    @contextlib.contextmanager
    def task(self, description: str, total: int, unit: str) -> Iterator[ProgressTask]:
        """Record the step (its first word: pull, process, upload)."""
        del total, unit
        self._path.write_text(description.split()[0])
        yield _NoTask()


class _NoTask:
    def advance(self, amount: int) -> None:
        del amount

    def set_done(self, done: int) -> None:
        del done


def _erased(ledger: Path) -> set[str]:
    if not ledger.exists():
        return set()
    return {line.strip() for line in ledger.read_text().splitlines() if line.strip()}


async def _async_keep_ledger(suit: EmulatedSuit, ledger: Path, known: set[str]) -> None:
    while True:
        new = [log_id for log_id in suit.erased_log_ids if log_id not in known]
        if new:
            with open(ledger, "a") as stream:
                stream.write("".join(f"{log_id}\n" for log_id in new))
                stream.flush()
                os.fsync(stream.fileno())
            known.update(new)
        await asyncio.sleep(LEDGER_POLL_S)


async def _async_main(suit_dir: Path, ledger: Path, config_path: Path) -> int:
    erased = _erased(ledger)
    logs = {
        path.stem: path.read_bytes()
        for path in sorted(suit_dir.glob("*.slog"))
        if path.stem not in erased
    }
    air = VirtualAir()
    suit = EmulatedSuit(SERIAL, logs, charging=True)
    await suit.async_start(air)
    ledger_task = asyncio.create_task(_async_keep_ledger(suit, ledger, set(erased)))
    radio = await GatewayRadio.async_create(air)
    runtime = open_runtime(load_config(config_path))
    agent = EdgeAgent(
        runtime,
        BleBackends(radio.scanner_backend, radio.client_backend),
        progress=PhaseFile(ledger.parent / "phase"),
    )
    print("READY", flush=True)
    while True:
        await agent.async_cycle()
        on_suit = set(suit.stored_log_ids)
        busy = [r for r in runtime.buffer.logs() if r.state not in _DONE_STATES]
        if not on_suit and not busy:
            break
    await asyncio.sleep(LEDGER_POLL_S * 4)
    ledger_task.cancel()
    runtime.close()
    await radio.async_close()
    await suit.async_stop()
    print("DONE", flush=True)
    return 0


def main() -> int:
    """Run one life (see the module docstring)."""
    logging.basicConfig(
        level=logging.INFO, format="%(created).3f %(name)s: %(message)s"
    )
    logging.getLogger("bumble").setLevel(logging.WARNING)
    suit_dir, ledger, config = (Path(arg) for arg in sys.argv[1:4])
    return asyncio.run(_async_main(suit_dir, ledger, config))


if __name__ == "__main__":
    sys.exit(main())
