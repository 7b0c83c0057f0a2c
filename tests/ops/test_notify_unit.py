"""sd_notify messages, the liveness rule and the watchdog pinger, in-process."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest
from ops_helpers import NotifyListener, pings

from edge_agent.service.progress import SILENT
from edge_agent.service.systemd import (
    HeartbeatProgress,
    Liveness,
    SystemdNotifier,
    async_run_watchdog,
)

pytestmark = pytest.mark.timeout(60)


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now_s = 1000.0

    def __call__(self) -> float:
        return self.now_s


@pytest.mark.parametrize("abstract", [False, True])
def test_notifier_sends_ready_status_watchdog_stopping(
    tmp_path: Path, abstract: bool
) -> None:
    with NotifyListener.open(None if abstract else tmp_path / "notify") as listener:
        notifier = SystemdNotifier.from_environment(
            {"NOTIFY_SOCKET": listener.address, "WATCHDOG_USEC": "4000000"}
        )
        assert notifier.enabled
        assert notifier.watchdog_interval_s == 2.0
        notifier.ready("started")
        notifier.watchdog()
        notifier.status("busy\nwith two lines")
        notifier.stopping("bye")
        received = [listener.receive(5.0) for _ in range(4)]
        notifier.close()
    assert received == [
        "READY=1\nSTATUS=started",
        "WATCHDOG=1",
        "STATUS=busy with two lines",
        "STOPPING=1\nSTATUS=bye",
    ]


def test_notifier_without_socket_or_for_another_pid_does_nothing() -> None:
    silent = SystemdNotifier.from_environment({})
    assert not silent.enabled
    assert silent.notify("READY=1") is False
    other = SystemdNotifier.from_environment(
        {
            "NOTIFY_SOCKET": "@nobody-listens",
            "WATCHDOG_USEC": "1000000",
            "WATCHDOG_PID": str(os.getpid() + 1),
        }
    )
    assert other.watchdog_interval_s is None


def test_notifier_survives_a_vanished_socket(tmp_path: Path) -> None:
    notifier = SystemdNotifier(str(tmp_path / "gone"), 1_000_000)
    assert notifier.notify("WATCHDOG=1") is False
    assert notifier.notify("WATCHDOG=1") is False


def test_liveness_stalls_only_inside_a_step_without_progress() -> None:
    clock = FakeClock()
    liveness = Liveness(stall_s=10.0, clock=clock)
    clock.now_s += 100
    assert liveness.stalled_for_s() is None  # idle never stalls

    liveness.enter("process")
    clock.now_s += 9
    assert liveness.stalled_for_s() is None
    clock.now_s += 2
    assert liveness.stalled_for_s() == pytest.approx(11.0)

    progress = HeartbeatProgress(SILENT, liveness)
    with progress.task("pull", total=10, unit="B") as task:
        assert liveness.stalled_for_s() is None
        clock.now_s += 11
        assert liveness.stalled_for_s() is not None
        task.set_done(5)
        assert liveness.stalled_for_s() is None
    liveness.leave()
    clock.now_s += 1000
    assert liveness.stalled_for_s() is None


async def test_pinger_withholds_pings_while_a_step_is_stalled() -> None:
    clock = FakeClock()
    liveness = Liveness(stall_s=5.0, clock=clock)
    stop = asyncio.Event()
    with NotifyListener.open() as listener:
        notifier = SystemdNotifier(listener.address, 100_000)  # ping every 50 ms
        task = asyncio.create_task(async_run_watchdog(notifier, liveness, stop))
        try:
            await asyncio.to_thread(listener.wait_for, lambda m: m == "WATCHDOG=1")

            # The step stalls: one STATUS saying so, then silence.
            liveness.enter("upload")
            clock.now_s += 6
            status = await asyncio.to_thread(
                listener.wait_for, lambda m: m.startswith("STATUS=")
            )
            assert "step upload made no progress" in status
            # Twenty ping periods: not one ping.
            silent = await asyncio.to_thread(listener.collect, 1.0)
            assert pings(silent) == 0

            # Progress again: pings resume.
            before = pings(listener.messages)
            liveness.beat()
            await asyncio.to_thread(listener.wait_for, lambda m: m == "WATCHDOG=1")
            assert pings(listener.messages) > before
        finally:
            stop.set()
            await task
            notifier.close()
