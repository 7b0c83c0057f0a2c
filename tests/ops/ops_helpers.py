"""Helpers for the operations tests: notify socket, emulated suit, agent process."""

from __future__ import annotations

import contextlib
import os
import re
import selectors
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from edge_agent.service.dock import BleBackends
from firmware_bridge.ble.suit import EmulatedSuit
from firmware_bridge.synth import RideSpec

VENV_BIN = Path(sys.executable).parent
EDGE_AGENT = VENV_BIN / "edge-agent"
FIRMWARE_BRIDGE = VENV_BIN / "firmware-bridge"
SERIAL = "SUIT-OPS-01"
RIDER = "rider-ops"
# Upper bounds of waits in the subprocess tests (seconds). They only stop a
# broken test from hanging; nothing asserts how fast anything happens.
START_TIMEOUT_S = 90.0
EVENT_TIMEOUT_S = 120.0

SMALL_RIDE = RideSpec(
    seed=7301,
    scenario="city",
    riding_s=40.0,
    sample_rate_hz=200.0,
    walk_before_s=5.0,
    walk_after_s=5.0,
    suit_serial=SERIAL,
)
# About 3 MB: the emulated link needs seconds for it, so a signal can land
# in the middle of the pull.
LARGE_RIDE = RideSpec(
    seed=7302,
    scenario="track",
    riding_s=300.0,
    sample_rate_hz=400.0,
    walk_before_s=10.0,
    walk_after_s=10.0,
    suit_serial=SERIAL,
)


@dataclass
class InProcessSuit:
    """An emulated suit on an in-process link, with the gateway's radio."""

    suit: EmulatedSuit
    backends: BleBackends


def free_port() -> int:
    """Return a loopback TCP port that was free a moment ago."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class NotifyListener:
    """The systemd side of sd_notify: a datagram socket collecting messages."""

    address: str
    sock: socket.socket
    messages: list[str] = field(default_factory=list)

    @classmethod
    @contextlib.contextmanager
    def open(cls, path: Path | None = None) -> Iterator[NotifyListener]:
        """Bind to ``path``, or to a unique abstract name when None."""
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        if path is None:
            name = f"edge-agent-test-{os.getpid()}-{time.monotonic_ns()}"
            sock.bind("\0" + name)
            address = "@" + name
        else:
            sock.bind(str(path))
            address = str(path)
        try:
            yield cls(address, sock)
        finally:
            sock.close()

    def receive(self, timeout_s: float) -> str | None:
        """Return the next message, or None after ``timeout_s``."""
        self.sock.settimeout(timeout_s)
        try:
            data = self.sock.recv(65536)
        except TimeoutError:
            return None
        message = data.decode()
        self.messages.append(message)
        return message

    def wait_for(
        self, predicate: Callable[[str], bool], timeout_s: float = EVENT_TIMEOUT_S
    ) -> str:
        """Return the first message matching ``predicate``; fail after timeout."""
        deadline = time.monotonic() + timeout_s
        while (remaining := deadline - time.monotonic()) > 0:
            message = self.receive(remaining)
            if message is not None and predicate(message):
                return message
        raise AssertionError(
            f"no matching notify message in {timeout_s} s; got {self.messages[-8:]}"
        )

    def collect(self, duration_s: float) -> list[str]:
        """Return the messages received during the next ``duration_s``."""
        start = len(self.messages)
        deadline = time.monotonic() + duration_s
        while (remaining := deadline - time.monotonic()) > 0:
            self.receive(remaining)
        return self.messages[start:]


def pings(messages: list[str]) -> int:
    """Return how many messages were watchdog pings."""
    return sum("WATCHDOG=1" in m.splitlines() for m in messages)


class SuitProcess:
    """``firmware-bridge emulate`` serving logs over HCI on a loopback port."""

    def __init__(self, logs: list[Path], log_file: Path) -> None:
        """Start the emulator and wait for its HCI port."""
        self._stderr = open(log_file, "wb")  # noqa: SIM115 (closed in stop)
        self.process = subprocess.Popen(
            [
                str(FIRMWARE_BRIDGE),
                "emulate",
                *map(str, logs),
                "--serial",
                SERIAL,
                "--hci-port",
                "0",
            ],
            stdout=subprocess.PIPE,
            stderr=self._stderr,
        )
        self.port = self._read_port()

    def _read_port(self) -> int:
        # Read the pipe unbuffered: a buffered reader may hold both lines
        # while select() reports the pipe empty.
        assert self.process.stdout is not None
        fd = self.process.stdout.fileno()
        selector = selectors.DefaultSelector()
        selector.register(fd, selectors.EVENT_READ)
        output = b""
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if not selector.select(timeout=1.0):
                continue
            chunk = os.read(fd, 4096)
            if not chunk:
                break
            output += chunk
            match = re.search(rb"tcp-client:127\.0\.0\.1:(\d+)\n", output)
            if match:
                return int(match.group(1))
        self.stop()
        raise AssertionError(
            f"firmware-bridge emulate did not report its HCI port: {output!r}"
        )

    @property
    def transport(self) -> str:
        """Return the bumble transport the agent opens."""
        return f"tcp-client:127.0.0.1:{self.port}"

    def stop(self) -> None:
        """End the emulator (SIGTERM, then SIGKILL after a grace period)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=20)
        if self.process.stdout is not None:
            self.process.stdout.close()
        self._stderr.close()


def write_config(
    path: Path,
    workdir: Path,
    transport: str,
    *,
    paired: bool = True,
    extra: str = "",
) -> Path:
    """Write an agent configuration for the emulated suit and a local store."""
    suits = f'\n[suits.{SERIAL}]\nrider_id = "{RIDER}"\n' if paired else ""
    path.write_text(
        f"""[gateway]
id = "gw-ops"
workdir = "{workdir}"

[store]
kind = "local"

[ble]
backend = "emulated"
hci_transport = "{transport}"
scan_timeout_s = 1.0
idle_poll_s = 2.0
{extra}{suits}"""
    )
    return path


def start_agent(
    config: Path,
    log_file: Path,
    *,
    notify: str | None = None,
    watchdog_usec: int | None = None,
    extra_env: dict[str, str] | None = None,
    once: bool = False,
) -> subprocess.Popen[bytes]:
    """Start ``edge-agent run`` with the given notify environment."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("EDGE_AGENT_")}
    env.pop("NOTIFY_SOCKET", None)
    env.pop("WATCHDOG_USEC", None)
    if notify is not None:
        env["NOTIFY_SOCKET"] = notify
    if watchdog_usec is not None:
        env["WATCHDOG_USEC"] = str(watchdog_usec)
    env.update(extra_env or {})
    command = [str(EDGE_AGENT), "run", "--config", str(config)]
    if once:
        command.append("--once")
    with open(log_file, "ab") as stderr:
        return subprocess.Popen(command, env=env, stderr=stderr)


def stop_process(process: subprocess.Popen[bytes]) -> None:
    """Kill a process that is still running (test clean-up)."""
    if process.poll() is None:
        process.kill()
        process.wait(timeout=30)
