"""Make one process the owner of a Bluetooth adapter: a lock file per adapter.

Two agents on one adapter (a second service instance, or ``edge-agent pair``
while the service runs) would fight over scanning and the one LE connection
a suit accepts, and BlueZ lets both try.  Each takes an exclusive
``flock`` on ``<runtime dir>/ble-<adapter>.lock`` first and writes its pid
into it; the second one fails at once with :class:`AdapterBusyError` naming
the adapter, the lock file and the holder's pid.  The kernel drops the lock
when the holder exits or dies, so a file left behind never blocks.

Runtime directory, first that applies:

1. ``runtime_dir`` given by the caller (the configuration);
2. ``$RUNTIME_DIRECTORY`` (systemd sets it for ``RuntimeDirectory=edge-agent``);
3. ``/run/edge-agent`` if it exists or can be created (root);
4. ``fallback_dir`` (for example ``<workdir>/run``), with a warning: a lock
   there guards only against agents that share that workdir.

Example::

    with AdapterLock("hci0", fallback_dir=workdir / "run"):
        await agent.async_run()
"""

from __future__ import annotations

import fcntl
import logging
import os
import re
from pathlib import Path
from types import TracebackType

from edge_agent.transfer.errors import AdapterBusyError

__all__ = ["SYSTEM_RUNTIME_DIR", "AdapterLock", "default_runtime_dir"]

_LOGGER = logging.getLogger(__name__)

# The system-wide place for the lock when no runtime directory is given.
SYSTEM_RUNTIME_DIR = Path("/run/edge-agent")

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


def default_runtime_dir(fallback_dir: Path | None = None) -> Path:
    """Return the directory for adapter locks (see the module docstring).

    Raises:
        ValueError: none of the places applies and no ``fallback_dir`` is given.
    """
    systemd_dir = os.environ.get("RUNTIME_DIRECTORY")
    if systemd_dir:
        return Path(systemd_dir.split(":")[0])
    try:
        SYSTEM_RUNTIME_DIR.mkdir(mode=0o755, exist_ok=True)
    except OSError:
        pass
    else:
        if os.access(SYSTEM_RUNTIME_DIR, os.W_OK):
            return SYSTEM_RUNTIME_DIR
    if fallback_dir is None:
        raise ValueError(
            f"no runtime directory for the adapter lock: {SYSTEM_RUNTIME_DIR} is "
            "not writable and no fallback was given"
        )
    _LOGGER.warning(
        "adapter lock under %s: it guards only agents that share this directory "
        "(%s is not writable)",
        fallback_dir,
        SYSTEM_RUNTIME_DIR,
    )
    return fallback_dir


class AdapterLock:
    """Hold the exclusive lock of one Bluetooth adapter for this process."""

    def __init__(
        self,
        adapter: str,
        *,
        runtime_dir: Path | None = None,
        fallback_dir: Path | None = None,
    ) -> None:
        """Name the lock; nothing is taken until :meth:`acquire`.

        Args:
            adapter: the adapter's name (``hci0``) or the emulated radio's
                HCI transport; other characters than ``A-Za-z0-9._-`` become
                ``_`` in the file name.
            runtime_dir: where the lock file goes; None picks as the module
                docstring says.
            fallback_dir: the last resort place (the agent's workdir/run).
        """
        if not adapter:
            raise ValueError("adapter name must not be empty")
        self.adapter = adapter
        self._runtime_dir = runtime_dir
        self._fallback_dir = fallback_dir
        self._path: Path | None = None
        self._descriptor: int | None = None

    @property
    def path(self) -> Path:
        """Return the lock file's path (resolving the runtime directory once)."""
        if self._path is None:
            directory = self._runtime_dir or default_runtime_dir(self._fallback_dir)
            name = _UNSAFE.sub("_", self.adapter)
            self._path = directory / f"ble-{name}.lock"
        return self._path

    @property
    def held(self) -> bool:
        """Return True while this object holds the lock."""
        return self._descriptor is not None

    def acquire(self) -> None:
        """Take the lock, or fail at once.

        Raises:
            AdapterBusyError: another process (or another AdapterLock in this
                one) holds it.
            OSError: the lock file cannot be created.
        """
        if self._descriptor is not None:
            return
        path = self.path
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_pid(descriptor)
            os.close(descriptor)
            who = f"pid {holder}" if holder is not None else "a process (pid unknown)"
            raise AdapterBusyError(
                f"Bluetooth adapter {self.adapter} is in use by {who} (lock "
                f"{path}); stop that edge agent (systemctl stop edge-agent) or "
                "configure another adapter",
                self.adapter,
                holder,
            ) from None
        except BaseException:
            os.close(descriptor)
            raise
        os.ftruncate(descriptor, 0)
        os.write(descriptor, f"{os.getpid()}\n".encode())
        self._descriptor = descriptor
        _LOGGER.debug("adapter %s: lock %s taken", self.adapter, path)

    def release(self) -> None:
        """Give the lock up (closing the file drops it); safe to repeat."""
        descriptor, self._descriptor = self._descriptor, None
        if descriptor is not None:
            os.close(descriptor)

    def __enter__(self) -> AdapterLock:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.release()


def _read_pid(descriptor: int) -> int | None:
    """Return the pid the lock holder wrote, or None if there is none yet."""
    try:
        text = os.pread(descriptor, 32, 0).decode("ascii").strip()
        return int(text) if text else None
    except (OSError, UnicodeDecodeError, ValueError):
        return None
