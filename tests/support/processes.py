"""Helpers shared by the test-server launchers (SeaweedFS, Azurite, ...).

Every launcher starts its server in a session of its own
(``start_new_session=True``), so stopping it means signalling the process
and, if it does not leave in time, killing its whole process group.
"""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

__all__ = ["end_process_group", "log_tail"]


def log_tail(path: Path, lines: int = 30) -> str:
    """Return the last ``lines`` lines of a server's log, for error messages."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log)"


def end_process_group(
    process: subprocess.Popen[bytes],
    grace_s: float,
    stop_signal: signal.Signals = signal.SIGTERM,
) -> bool:
    """Stop ``process`` with ``stop_signal``; kill its group after ``grace_s``.

    Returns True when the process had to be killed.
    """
    if process.poll() is not None:
        return False
    process.send_signal(stop_signal)
    try:
        process.wait(timeout=grace_s)
        return False
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=grace_s)
        return True
