"""A TCP proxy on loopback that misbehaves on command, for network tests.

Put it between a client and a server (Mosquitto, SeaweedFS, anything TCP)
and script the faults a gateway's uplink shows in the field:

- ``stall(s, direction)``: stop forwarding for s seconds; bytes are held,
  not dropped, and TCP backpressure builds up as on a dead radio link;
- ``throttle(bytes_per_s, direction)``: forward at most that rate;
- ``reset_connections()``: abort every proxied connection with a TCP RST;
- ``refuse(True)``: reset every new connection at once (uplink down).

``play(steps)`` runs a script of :class:`Fault` steps in order, in the
calling thread or in the background with :meth:`FlakyProxy.play_in_background`.
Every duration is bounded by :data:`MAX_FAULT_S` and a script by
:data:`MAX_SCRIPT_S`. The proxy listens on 127.0.0.1 at an ephemeral port
and forwards only to a loopback address.

Implementation: an asyncio loop in one daemon thread; control calls from
test threads are thread-safe.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import socket
import struct
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Literal

__all__ = [
    "Direction",
    "FaultStep",
    "FlakyProxy",
    "ProxyStats",
    "ScriptRun",
    "pause",
    "refuse_for",
    "reset",
    "run_flaky_proxy",
    "stall",
    "throttle",
]

_LOGGER = logging.getLogger(__name__)

Direction = Literal["up", "down", "both"]
_DIRECTIONS: tuple[Literal["up", "down"], ...] = ("up", "down")
LISTEN_HOST = "127.0.0.1"
# Longest single fault and longest script: a test that needs more is a
# soak test and belongs in benchmarks/.
MAX_FAULT_S = 120.0
MAX_SCRIPT_S = 600.0
# Upstream connect and per-write drain limits; a drain that waits longer
# means the receiver stopped reading for good, and the link is reset.
CONNECT_TIMEOUT_S = 5.0
DRAIN_TIMEOUT_S = 60.0
# A connection silent in one direction for this long is dropped: longer
# than any keepalive or pooled-HTTP idle time a test uses.
IDLE_TIMEOUT_S = 600.0
CHUNK_BYTES = 16 * 1024
# Throttled reads take about this many seconds' worth of bytes, so the rate
# is smooth at the scale of a protocol exchange.
THROTTLE_SLICE_S = 0.1
STALL_POLL_S = 0.02
CONTROL_TIMEOUT_S = 5.0


@dataclass
class ProxyStats:
    """Counters of one proxy (read from tests)."""

    accepted: int = 0
    refused: int = 0
    active: int = 0
    peak_active: int = 0
    resets: int = 0
    upstream_failures: int = 0
    bytes_up: int = 0
    bytes_down: int = 0


@dataclass(frozen=True)
class FaultStep:
    """One step of a fault script; build with the helper functions."""

    kind: Literal["stall", "throttle", "reset", "refuse", "pause"]
    duration_s: float = 0.0
    direction: Direction = "both"
    bytes_per_s: int = 0

    def __post_init__(self) -> None:
        if not 0 <= self.duration_s <= MAX_FAULT_S:
            raise ValueError(
                f"fault {self.kind}: duration {self.duration_s} s outside "
                f"0..{MAX_FAULT_S} s"
            )


def stall(duration_s: float, direction: Direction = "both") -> FaultStep:
    """Return a step that holds all bytes in ``direction`` for a while."""
    return FaultStep("stall", duration_s, direction)


def throttle(
    bytes_per_s: int, duration_s: float, direction: Direction = "both"
) -> FaultStep:
    """Return a step that limits ``direction`` to ``bytes_per_s`` for a while."""
    if bytes_per_s < 1:
        raise ValueError(f"throttle: bytes_per_s must be >= 1, got {bytes_per_s}")
    return FaultStep("throttle", duration_s, direction, bytes_per_s)


def reset() -> FaultStep:
    """Return a step that resets every open connection."""
    return FaultStep("reset")


def refuse_for(duration_s: float) -> FaultStep:
    """Return a step that resets all current and new connections for a while."""
    return FaultStep("refuse", duration_s)


def pause(duration_s: float) -> FaultStep:
    """Return a step of normal forwarding."""
    return FaultStep("pause", duration_s)


def _require_loopback(host: str) -> None:
    if host == "localhost":
        return
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise ValueError(f"flaky proxy forwards to loopback only, not {host!r}")


def _abort(writer: asyncio.StreamWriter) -> None:
    """Close with an RST (linger 0) instead of an orderly FIN."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(
                socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
            )
    writer.transport.abort()


@dataclass(eq=False)
class _Link:
    client: asyncio.StreamWriter
    server: asyncio.StreamWriter
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    aborted: bool = False


class ScriptRun:
    """A fault script running in a background thread."""

    def __init__(self, proxy: FlakyProxy, steps: Sequence[FaultStep]) -> None:
        self.error: BaseException | None = None
        self._thread = threading.Thread(
            target=self._run,
            args=(proxy, steps),
            name="flaky-proxy-script",
            daemon=True,
        )
        self._thread.start()

    def _run(self, proxy: FlakyProxy, steps: Sequence[FaultStep]) -> None:
        try:
            proxy.play(steps)
        except BaseException as exc:
            self.error = exc

    @property
    def done(self) -> bool:
        """Return True once every step ran."""
        return not self._thread.is_alive()

    def join(self, timeout_s: float) -> None:
        """Wait for the script; re-raise its error.

        Raises:
            TimeoutError: still running after ``timeout_s``.
        """
        self._thread.join(timeout_s)
        if self._thread.is_alive():
            raise TimeoutError(f"fault script still running after {timeout_s} s")
        if self.error is not None:
            raise self.error


class FlakyProxy:
    """Forward 127.0.0.1:``port`` to an upstream loopback port, with faults."""

    def __init__(self, upstream_port: int, upstream_host: str = LISTEN_HOST) -> None:
        _require_loopback(upstream_host)
        self.upstream_host = upstream_host
        self.upstream_port = upstream_port
        self.port = 0
        self.stats = ProxyStats()
        self._stalled_until = {"up": 0.0, "down": 0.0}
        self._rate: dict[str, int | None] = {"up": None, "down": None}
        self._refusing = False
        self._links: set[_Link] = set()
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.Server | None = None
        self._thread: threading.Thread | None = None

    # ----- life cycle -----

    def start(self) -> None:
        """Start listening; returns once the port is known."""
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="flaky-proxy", daemon=True
        )
        self._thread.start()
        future = asyncio.run_coroutine_threadsafe(self._listen(), self._loop)
        self.port = future.result(CONTROL_TIMEOUT_S)
        _LOGGER.info(
            "flaky proxy: %s:%d -> %s:%d",
            LISTEN_HOST,
            self.port,
            self.upstream_host,
            self.upstream_port,
        )

    def stop(self) -> None:
        """Reset every connection, stop listening and end the loop thread."""
        if self._thread is None:
            return
        future = asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop)
        future.result(CONTROL_TIMEOUT_S)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(CONTROL_TIMEOUT_S)
        self._loop.close()
        self._thread = None

    def __enter__(self) -> FlakyProxy:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # ----- faults (any thread) -----

    def stall(self, duration_s: float, direction: Direction = "both") -> None:
        """Hold every byte in ``direction`` for ``duration_s`` (returns at once)."""
        if not 0 <= duration_s <= MAX_FAULT_S:
            raise ValueError(f"stall of {duration_s} s outside 0..{MAX_FAULT_S} s")
        until = time.monotonic() + duration_s
        for name in self._directions(direction):
            self._stalled_until[name] = until

    def unstall(self) -> None:
        """End any stall now."""
        for name in _DIRECTIONS:
            self._stalled_until[name] = 0.0

    def throttle(self, bytes_per_s: int | None, direction: Direction = "both") -> None:
        """Limit ``direction`` to ``bytes_per_s``; None lifts the limit."""
        if bytes_per_s is not None and bytes_per_s < 1:
            raise ValueError(f"throttle: bytes_per_s must be >= 1, got {bytes_per_s}")
        for name in self._directions(direction):
            self._rate[name] = bytes_per_s

    def refuse(self, refusing: bool) -> None:
        """Reset new connections at once while ``refusing`` (and current ones)."""
        self._refusing = refusing
        if refusing:
            self.reset_connections()

    def reset_connections(self) -> int:
        """Abort every proxied connection with an RST; return how many."""
        future = asyncio.run_coroutine_threadsafe(self._reset_all(), self._loop)
        return future.result(CONTROL_TIMEOUT_S)

    def set_upstream(self, port: int, host: str = LISTEN_HOST) -> None:
        """Send new connections to another loopback port."""
        _require_loopback(host)
        self.upstream_host = host
        self.upstream_port = port

    def play(self, steps: Sequence[FaultStep]) -> None:
        """Run a fault script in this thread, step after step.

        Raises:
            ValueError: the script would run longer than MAX_SCRIPT_S.
        """
        total_s = sum(step.duration_s for step in steps)
        if total_s > MAX_SCRIPT_S:
            raise ValueError(f"fault script of {total_s} s exceeds {MAX_SCRIPT_S} s")
        for number, step in enumerate(steps, start=1):
            _LOGGER.info(
                "flaky proxy %d: step %d/%d: %s", self.port, number, len(steps), step
            )
            if step.kind == "reset":
                self.reset_connections()
                continue
            if step.kind == "stall":
                self.stall(step.duration_s, step.direction)
            elif step.kind == "throttle":
                self.throttle(step.bytes_per_s, step.direction)
            elif step.kind == "refuse":
                self.refuse(True)
            time.sleep(step.duration_s)
            if step.kind == "throttle":
                self.throttle(None, step.direction)
            elif step.kind == "refuse":
                self.refuse(False)

    def play_in_background(self, steps: Sequence[FaultStep]) -> ScriptRun:
        """Run a fault script in a background thread."""
        return ScriptRun(self, steps)

    @staticmethod
    def _directions(direction: Direction) -> tuple[Literal["up", "down"], ...]:
        if direction == "both":
            return _DIRECTIONS
        if direction not in _DIRECTIONS:
            raise ValueError(f"direction must be up, down or both, not {direction!r}")
        return (direction,)

    # ----- the loop side -----

    async def _listen(self) -> int:
        self._server = await asyncio.start_server(self._accept, LISTEN_HOST, 0)
        return int(self._server.sockets[0].getsockname()[1])

    async def _shutdown(self) -> None:
        if self._server is not None:
            self._server.close()
        await self._reset_all(count=False)
        if self._server is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._server.wait_closed(), CONTROL_TIMEOUT_S)

    async def _reset_all(self, *, count: bool = True) -> int:
        links = list(self._links)
        for link in links:
            self._abort_link(link)
        if count:
            self.stats.resets += len(links)
        return len(links)

    def _abort_link(self, link: _Link) -> None:
        if link.aborted:
            return
        link.aborted = True
        _abort(link.client)
        _abort(link.server)
        for task in link.tasks:
            task.cancel()

    async def _accept(
        self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter
    ) -> None:
        if self._refusing:
            self.stats.refused += 1
            _abort(client_writer)
            return
        try:
            server_reader, server_writer = await asyncio.wait_for(
                asyncio.open_connection(self.upstream_host, self.upstream_port),
                CONNECT_TIMEOUT_S,
            )
        except (OSError, TimeoutError) as exc:
            self.stats.upstream_failures += 1
            _LOGGER.debug("flaky proxy %d: upstream connect failed: %s", self.port, exc)
            _abort(client_writer)
            return
        link = _Link(client_writer, server_writer)
        self.stats.accepted += 1
        self._links.add(link)
        self.stats.active = len(self._links)
        self.stats.peak_active = max(self.stats.peak_active, self.stats.active)
        link.tasks = [
            asyncio.create_task(self._pump(client_reader, server_writer, "up", link)),
            asyncio.create_task(self._pump(server_reader, client_writer, "down", link)),
        ]
        try:
            await asyncio.gather(*link.tasks, return_exceptions=True)
        finally:
            self._links.discard(link)
            self.stats.active = len(self._links)
            if not link.aborted:
                for writer in (link.client, link.server):
                    writer.close()

    async def _wait_unstalled(self, direction: str) -> None:
        while (remaining := self._stalled_until[direction] - time.monotonic()) > 0:
            await asyncio.sleep(min(STALL_POLL_S, remaining))

    async def _pump(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        direction: Literal["up", "down"],
        link: _Link,
    ) -> None:
        try:
            while True:
                rate = self._rate[direction]
                size = (
                    CHUNK_BYTES
                    if rate is None
                    else max(1, int(rate * THROTTLE_SLICE_S))
                )
                await self._wait_unstalled(direction)
                data = await asyncio.wait_for(
                    reader.read(min(size, CHUNK_BYTES)), IDLE_TIMEOUT_S
                )
                if not data:
                    break
                await self._wait_unstalled(direction)
                writer.write(data)
                await asyncio.wait_for(writer.drain(), DRAIN_TIMEOUT_S)
                if direction == "up":
                    self.stats.bytes_up += len(data)
                else:
                    self.stats.bytes_down += len(data)
                rate = self._rate[direction]
                if rate is not None:
                    await asyncio.sleep(len(data) / rate)
        except (OSError, TimeoutError) as exc:
            _LOGGER.debug(
                "flaky proxy %d: %s pump ended: %s", self.port, direction, exc
            )
            self._abort_link(link)
            return
        # Orderly end of one side: end the other side in order too.
        for task in link.tasks:
            if task is not asyncio.current_task():
                task.cancel()


@contextlib.contextmanager
def run_flaky_proxy(
    upstream_port: int, upstream_host: str = LISTEN_HOST
) -> Iterator[FlakyProxy]:
    """Run a proxy to ``upstream_host:upstream_port`` for the block."""
    proxy = FlakyProxy(upstream_port, upstream_host)
    proxy.start()
    try:
        yield proxy
    finally:
        proxy.stop()
