"""Progress reporting that suits both a terminal and journald.

The agent's steps report progress through :class:`Progress`; the CLI hands
them :class:`TerminalProgress` (tqdm bars when stderr is a terminal) and the
service keeps :data:`SILENT` (the per-unit INFO log lines are its record).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Protocol

__all__ = ["SILENT", "Progress", "ProgressTask", "TerminalProgress"]


class ProgressTask(Protocol):
    """One bar: advance it, or set its absolute position."""

    def advance(self, amount: int) -> None:
        """Add ``amount`` units of done work."""

    def set_done(self, done: int) -> None:
        """Set the done units to ``done`` (ignored when it goes backwards)."""


class Progress(Protocol):
    """A factory of progress tasks."""

    def task(
        self, description: str, total: int, unit: str
    ) -> AbstractContextManager[ProgressTask]:
        """Context manager yielding one task for ``total`` units."""


class _NullTask:
    def advance(self, amount: int) -> None:
        del amount

    def set_done(self, done: int) -> None:
        del done


class _SilentProgress:
    @contextmanager
    def task(self, description: str, total: int, unit: str) -> Iterator[ProgressTask]:
        del description, total, unit
        yield _NullTask()


SILENT: Progress = _SilentProgress()


class _TqdmTask:
    def __init__(self, bar: object) -> None:
        self._bar = bar
        self._done = 0

    def advance(self, amount: int) -> None:
        self._done += amount
        self._bar.update(amount)  # type: ignore[attr-defined]

    def set_done(self, done: int) -> None:
        if done > self._done:
            self.advance(done - self._done)


class TerminalProgress:
    """tqdm bars on stderr when it is a terminal, nothing otherwise."""

    def __init__(self, enabled: bool | None = None) -> None:
        self.enabled = sys.stderr.isatty() if enabled is None else enabled

    @contextmanager
    def task(self, description: str, total: int, unit: str) -> Iterator[ProgressTask]:
        """Show one bar for the duration of the block."""
        if not self.enabled:
            yield _NullTask()
            return
        from tqdm import tqdm

        scale = unit in ("B", "bytes")
        with tqdm(
            total=total,
            desc=description,
            unit="B" if scale else unit,
            unit_scale=scale,
            unit_divisor=1024 if scale else 1000,
            leave=False,
            dynamic_ncols=True,
        ) as bar:
            yield _TqdmTask(bar)
