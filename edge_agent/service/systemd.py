"""Tell systemd how the agent is doing: ready, alive, status, stopping.

**Notify protocol.** systemd (``Type=notify``) puts an AF_UNIX datagram
socket in ``NOTIFY_SOCKET``: a path, or an abstract name written with a
leading ``@``. A message is newline-separated ``KEY=VALUE`` lines:
``READY=1`` once start-up is done, ``WATCHDOG=1`` as a keep-alive,
``STATUS=...`` for ``systemctl status``, ``STOPPING=1`` when shutdown
begins. Without ``NOTIFY_SOCKET`` (a terminal, a unit without notify) every
call does nothing. A failed send is logged once and never raised: the agent
must not die because systemd's socket went away.

**Watchdog design.** ``WatchdogSec=`` in the unit reaches the agent as
``WATCHDOG_USEC``; :func:`async_run_watchdog` pings at half that period.
The pinger is an asyncio task on the agent's own event loop, so a blocked
loop (a synchronous call that never returns) stops the pings by itself: no
thread pings on behalf of a loop that is stuck.

Processing and uploading run in worker threads while the loop stays free,
so a free loop alone does not prove the agent works. Every step therefore
reports progress to a :class:`Liveness`: the cycle when it enters or
leaves a step, and the steps through :class:`HeartbeatProgress` (each BLE
chunk pulled, each log processed, each log uploaded). The pinger pings only
while the agent idles between cycles or the running step made progress
within ``[service] step_stall_s``. A step that hangs (a thread stuck in a
call, an await that never completes) therefore stops the pings after at
most ``step_stall_s`` plus one ping period, and systemd restarts the agent
``WatchdogSec`` later. ``step_stall_s`` must exceed the longest
single-log processing or upload, since those report progress only when a
log is done; the default (30 min) covers a 250 MB log on a slow uplink.

Exception tree: none. Notification problems are logged, not raised.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager

from .progress import Progress, ProgressTask

__all__ = [
    "HeartbeatProgress",
    "Liveness",
    "SystemdNotifier",
    "async_run_watchdog",
]

_LOGGER = logging.getLogger(__name__)

# Largest STATUS= text sent; systemctl shows one line and datagrams are small.
MAX_STATUS_CHARS = 200
# Ping period when the watchdog is off (the pinger still logs stalls).
IDLE_CHECK_S = 5.0


class SystemdNotifier:
    """Send sd_notify messages to ``NOTIFY_SOCKET``; no-ops without it."""

    def __init__(self, address: str | None, watchdog_usec: int | None) -> None:
        """Use the socket at ``address`` (``@name`` = abstract); None = disabled."""
        self._address = address
        self._watchdog_usec = watchdog_usec
        self._socket: socket.socket | None = None
        self._warned = False
        self._lock = threading.Lock()

    @classmethod
    def from_environment(
        cls, environ: Mapping[str, str] | None = None
    ) -> SystemdNotifier:
        """Read ``NOTIFY_SOCKET``, ``WATCHDOG_USEC`` and ``WATCHDOG_PID``."""
        env = os.environ if environ is None else environ
        address = env.get("NOTIFY_SOCKET") or None
        usec: int | None = None
        pid = env.get("WATCHDOG_PID", "")
        if env.get("WATCHDOG_USEC", "").isdigit() and (
            not pid or pid == str(os.getpid())
        ):
            usec = int(env["WATCHDOG_USEC"]) or None
        return cls(address, usec)

    @property
    def enabled(self) -> bool:
        """Return True when there is a socket to notify."""
        return self._address is not None

    @property
    def watchdog_interval_s(self) -> float | None:
        """Return the ping period (half of WATCHDOG_USEC), None without watchdog."""
        if self._watchdog_usec is None or not self.enabled:
            return None
        return self._watchdog_usec / 2 / 1_000_000

    def _target(self) -> str:
        assert self._address is not None
        if self._address.startswith("@"):
            return "\0" + self._address[1:]
        return self._address

    def notify(self, *lines: str) -> bool:
        """Send ``lines`` as one message; return False if it was not sent."""
        if self._address is None:
            return False
        message = "\n".join(lines).encode("utf-8", errors="replace")
        with self._lock:
            try:
                if self._socket is None:
                    self._socket = socket.socket(
                        socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC
                    )
                self._socket.sendto(message, self._target())
            except OSError as exc:
                if not self._warned:
                    _LOGGER.warning(
                        "systemd notify socket %s: send failed: %s; "
                        "readiness and watchdog pings may be lost",
                        self._address,
                        exc,
                    )
                    self._warned = True
                return False
        return True

    def ready(self, status: str) -> None:
        """Say start-up is done."""
        self.notify("READY=1", _status_line(status))

    def watchdog(self) -> None:
        """Send one keep-alive."""
        self.notify("WATCHDOG=1")

    def status(self, text: str) -> None:
        """Set the one-line status ``systemctl status`` shows."""
        self.notify(_status_line(text))

    def stopping(self, status: str) -> None:
        """Say shutdown has begun."""
        self.notify("STOPPING=1", _status_line(status))

    def close(self) -> None:
        """Close the socket (later calls reopen it)."""
        with self._lock:
            if self._socket is not None:
                self._socket.close()
                self._socket = None


def _status_line(text: str) -> str:
    flat = " ".join(text.split())
    return "STATUS=" + flat[:MAX_STATUS_CHARS]


class Liveness:
    """Which step the agent is in and when it last made progress.

    ``beat`` may be called from any thread (it only stores a float); the
    step changes come from the event loop.
    """

    def __init__(
        self, stall_s: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        """Judge a step stalled after ``stall_s`` seconds without a beat."""
        self.stall_s = stall_s
        self._clock = clock
        self._step: str | None = None
        self._last_beat = clock()

    @property
    def step(self) -> str | None:
        """Return the step running now, None while idle."""
        return self._step

    def beat(self) -> None:
        """Record progress."""
        self._last_beat = self._clock()

    def enter(self, step: str) -> None:
        """Record that ``step`` starts."""
        self._step = step
        self.beat()

    def leave(self) -> None:
        """Record that the agent is idle again."""
        self._step = None
        self.beat()

    def stalled_for_s(self) -> float | None:
        """Return how long the running step went without progress, if stalled."""
        if self._step is None:
            return None
        quiet_s = self._clock() - self._last_beat
        return quiet_s if quiet_s > self.stall_s else None


async def async_run_watchdog(
    notifier: SystemdNotifier, liveness: Liveness, stop: asyncio.Event
) -> None:
    """Ping the watchdog while the agent lives; see the module docstring.

    Runs until ``stop`` is set or the task is cancelled. Without a watchdog
    it still checks for stalls (and logs them) every ``IDLE_CHECK_S``.
    """
    interval_s = notifier.watchdog_interval_s or IDLE_CHECK_S
    withheld = False
    while not stop.is_set():
        stalled_s = liveness.stalled_for_s()
        if stalled_s is None:
            if notifier.watchdog_interval_s is not None:
                notifier.watchdog()
            if withheld:
                _LOGGER.warning("watchdog: progress again; pings resumed")
            withheld = False
        elif not withheld:
            withheld = True
            text = (
                f"step {liveness.step} made no progress for {stalled_s:.0f} s "
                f"(limit {liveness.stall_s:g} s); watchdog pings withheld"
            )
            _LOGGER.error("watchdog: %s; systemd will restart the agent", text)
            notifier.status(text)
        try:
            await asyncio.wait_for(stop.wait(), timeout=interval_s)
        except TimeoutError:
            continue


class _HeartbeatTask:
    def __init__(self, inner: ProgressTask, liveness: Liveness) -> None:
        self._inner = inner
        self._liveness = liveness

    def advance(self, amount: int) -> None:
        self._liveness.beat()
        self._inner.advance(amount)

    def set_done(self, done: int) -> None:
        self._liveness.beat()
        self._inner.set_done(done)


class HeartbeatProgress:
    """A :class:`Progress` that also beats the liveness on every update."""

    def __init__(self, inner: Progress, liveness: Liveness) -> None:
        """Forward to ``inner``; beat ``liveness`` at task start, end, updates."""
        self._inner = inner
        self._liveness = liveness

    def task(
        self, description: str, total: int, unit: str
    ) -> AbstractContextManager[ProgressTask]:
        """Context manager yielding one task for ``total`` units."""
        return self._task(description, total, unit)

    @contextmanager
    def _task(self, description: str, total: int, unit: str) -> Iterator[ProgressTask]:
        self._liveness.beat()
        try:
            with self._inner.task(description, total, unit) as inner:
                yield _HeartbeatTask(inner, self._liveness)
        finally:
            self._liveness.beat()
