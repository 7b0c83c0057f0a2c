"""``edge-agent run`` as systemd runs it: notify socket, watchdog, SIGTERM.

Each test starts ``firmware-bridge emulate`` (a suit served over HCI on a
loopback port) and the agent in its own process with ``NOTIFY_SOCKET`` set,
and plays systemd's side of the socket.
"""

from __future__ import annotations

import re
import signal
import subprocess
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest
from ops_helpers import (
    EDGE_AGENT,
    EVENT_TIMEOUT_S,
    RIDER,
    SERIAL,
    NotifyListener,
    SuitProcess,
    free_port,
    pings,
    start_agent,
    stop_process,
    write_config,
)

from edge_agent.custody import CustodyBuffer, LogState
from edge_agent.service.agent import TEST_HANG_ENV
from edge_agent.service.state import read_agent_state

pytestmark = pytest.mark.timeout(300)

StartSuit = Callable[[list[Path]], SuitProcess]
# WATCHDOG_USEC given to the agent: a ping every 0.5 s.
WATCHDOG_USEC = 1_000_000
# Pings that must arrive before a test trusts the pinger runs.
MIN_PINGS = 3
# How long the hang tests listen for pings that must not come (six periods).
QUIET_S = 3.0


def _lines(message: str) -> list[str]:
    return message.splitlines()


def _wait_pings(listener: NotifyListener, count: int) -> None:
    deadline = time.monotonic() + EVENT_TIMEOUT_S
    while pings(listener.messages) < count and time.monotonic() < deadline:
        listener.receive(1.0)
    assert pings(listener.messages) >= count, listener.messages[-8:]


def _wait_exit(process: subprocess.Popen[bytes]) -> int:
    try:
        return process.wait(timeout=EVENT_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        stop_process(process)
        raise AssertionError("the agent did not exit after SIGTERM") from None


def test_run_notifies_ready_pings_watchdog_serves_metrics_and_stops_on_sigterm(
    tmp_path: Path, small_log: Path, suit_process: StartSuit
) -> None:
    suit = suit_process([small_log])
    port = free_port()
    config = write_config(
        tmp_path / "agent.toml",
        tmp_path / "gw",
        suit.transport,
        extra=f"\n[metrics]\nport = {port}\n",
    )
    with NotifyListener.open(tmp_path / "notify") as listener:
        agent = start_agent(
            config,
            tmp_path / "agent.log",
            notify=listener.address,
            watchdog_usec=WATCHDOG_USEC,
        )
        try:
            ready = listener.wait_for(lambda m: "READY=1" in _lines(m))
            assert "STATUS=gateway gw-ops: started" in _lines(ready)
            listener.wait_for(lambda m: m.startswith("STATUS=idle after cycle 1"))
            _wait_pings(listener, MIN_PINGS)

            url = f"http://127.0.0.1:{port}/metrics"
            with urllib.request.urlopen(url, timeout=10) as response:
                text = response.read().decode()
            assert 'edge_agent_logs_total{step="uploaded"} 1.0' in text
            pulled = re.search(r"^edge_agent_pulled_bytes_total (\S+)$", text, re.M)
            assert pulled and float(pulled.group(1)) >= small_log.stat().st_size
            assert 'edge_agent_buffer_logs{state="purged"} 1.0' in text

            agent.send_signal(signal.SIGTERM)
            stopping = listener.wait_for(lambda m: "STOPPING=1" in _lines(m))
            assert "SIGTERM" in stopping
            assert _wait_exit(agent) == 0
        finally:
            stop_process(agent)
    state = read_agent_state(tmp_path / "gw")
    assert state is not None and state["activity"] == "stopped"
    assert state["last_error"] is None


@pytest.mark.parametrize("mode", ["loop", "thread"])
def test_a_hung_step_stops_the_watchdog_pings(
    tmp_path: Path, small_log: Path, suit_process: StartSuit, mode: str
) -> None:
    suit = suit_process([small_log])
    config = write_config(
        tmp_path / "agent.toml",
        tmp_path / "gw",
        suit.transport,
        paired=False,
        extra="\n[service]\nstep_stall_s = 1.0\n",
    )
    with NotifyListener.open() as listener:
        agent = start_agent(
            config,
            tmp_path / "agent.log",
            notify=listener.address,
            watchdog_usec=WATCHDOG_USEC,
            extra_env={TEST_HANG_ENV: mode},
        )
        try:
            listener.wait_for(lambda m: "READY=1" in _lines(m))
            hook = listener.wait_for(lambda m: "test hook" in m)
            assert f"{TEST_HANG_ENV}={mode}" in hook
            assert pings(listener.messages) >= 1  # pinged before the hang
            if mode == "thread":
                # The loop is alive: it says why it stops pinging.
                withheld = listener.wait_for(lambda m: "pings withheld" in m)
                assert "step process made no progress" in withheld
            # From here on, not one ping.
            assert pings(listener.collect(QUIET_S)) == 0
            assert agent.poll() is None, "the agent should hang, not exit"
        finally:
            stop_process(agent)


def test_sigterm_during_a_pull_exits_0_and_the_next_run_completes(
    tmp_path: Path, large_log: Path, suit_process: StartSuit
) -> None:
    suit = suit_process([large_log])
    workdir = tmp_path / "gw"
    config = write_config(tmp_path / "agent.toml", workdir, suit.transport)
    buffer_root = workdir / "buffer"
    log_file = tmp_path / "agent.log"

    with NotifyListener.open() as listener:
        agent = start_agent(config, log_file, notify=listener.address)
        try:
            listener.wait_for(lambda m: "READY=1" in _lines(m))
            # Signal once part of the log is durable on the gateway.
            deadline = time.monotonic() + EVENT_TIMEOUT_S
            while time.monotonic() < deadline:
                with CustodyBuffer.open(buffer_root, read_only=True) as buffer:
                    pulling = buffer.logs([LogState.PULLING])
                if pulling and pulling[0].durable_offset > 0:
                    break
                time.sleep(0.02)
            else:
                raise AssertionError("the pull never started")
            agent.send_signal(signal.SIGTERM)
            listener.wait_for(lambda m: "STOPPING=1" in _lines(m))
            assert _wait_exit(agent) == 0
        finally:
            stop_process(agent)

    # The buffer holds the partial log at its durable offset.
    with CustodyBuffer.open(buffer_root) as buffer:
        records = buffer.logs()
        assert [r.state for r in records] == [LogState.PULLING]
        partial = records[0]
        assert 0 < partial.durable_offset < partial.size_bytes
        assert partial.size_bytes == large_log.stat().st_size

    # The next run resumes the pull and carries the log to the end.
    again = start_agent(config, log_file, once=True)
    try:
        assert again.wait(timeout=EVENT_TIMEOUT_S) == 0
    finally:
        stop_process(again)
    with CustodyBuffer.open(buffer_root) as buffer:
        (record,) = buffer.logs()
    assert record.state is LogState.PURGED
    assert record.log_id == partial.log_id
    assert f"resumed at byte {partial.durable_offset}" in log_file.read_text()


def test_pair_and_reload_lets_a_running_agent_pull_a_new_suit(
    tmp_path: Path, small_log: Path, suit_process: StartSuit
) -> None:
    suit = suit_process([small_log])
    config = write_config(
        tmp_path / "agent.toml", tmp_path / "gw", suit.transport, paired=False
    )
    with NotifyListener.open() as listener:
        agent = start_agent(config, tmp_path / "agent.log", notify=listener.address)
        try:
            listener.wait_for(lambda m: m.startswith("STATUS=idle after cycle"))
            state = read_agent_state(tmp_path / "gw")
            assert state is not None
            assert state["held_back"] == {"pull": "suit not paired to a rider"}

            paired = subprocess.run(
                [
                    str(EDGE_AGENT),
                    "pair",
                    "--config",
                    str(config),
                    "--suit",
                    SERIAL,
                    "--rider",
                    RIDER,
                    "--user-type",
                    "private",
                    "--product",
                    "lightweight",
                ],
                capture_output=True,
                text=True,
                timeout=EVENT_TIMEOUT_S,
            )
            assert paired.returncode == 0, paired.stderr
            agent.send_signal(signal.SIGHUP)
            listener.wait_for(lambda m: "configuration reloaded" in m)
            listener.wait_for(lambda m: "1 pulled, 1 uploaded" in m)
            agent.send_signal(signal.SIGTERM)
            assert _wait_exit(agent) == 0
        finally:
            stop_process(agent)
    with CustodyBuffer.open(tmp_path / "gw" / "buffer") as buffer:
        (record,) = buffer.logs()
    assert record.state is LogState.PURGED and record.rider_id == RIDER
