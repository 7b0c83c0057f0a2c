"""Start a throw-away PostgreSQL cluster on loopback, for tests and benchmarks.

``initdb`` creates a cluster in a fresh temporary folder (trust
authentication, C locale, no fsync), and ``postgres`` serves it on
127.0.0.1 at a port picked free just before start (PostgreSQL cannot bind
port 0 and report it), with its unix socket in the same folder. The
system's own server on 5432 is never touched.

PostgreSQL refuses to run as root. When the tests run as root, the cluster
belongs to an unprivileged account instead: ``postgres`` (created by
Debian's ``postgresql`` package, which the bootstrap installs), else
``nobody``; the temporary folder is handed to that account, and the server
process is started with its uid and gid. As any other user the cluster
simply runs as that user.

Start-up waits until a query succeeds; stop asks for a fast shutdown
(SIGINT), then kills the process group after a grace period. The server is
also asked to die with its parent, so a killed test run leaves nothing.

Use the session fixture ``postgres_server`` (import it into a conftest) or
the context manager :func:`run_postgres`.
"""

from __future__ import annotations

import contextlib
import ctypes
import glob
import logging
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.support.processes import end_process_group, log_tail

__all__ = [
    "PostgresServer",
    "PostgresUnavailableError",
    "find_postgres_bindir",
    "postgres_server",
    "run_postgres",
]

_LOGGER = logging.getLogger(__name__)

HOST = "127.0.0.1"
SUPERUSER = "postgres"
# initdb plus first start take 2-4 s here; a loaded CI machine needs more.
STARTUP_TIMEOUT_S = 60.0
INITDB_TIMEOUT_S = 120.0
# A fast shutdown ends sessions and checkpoints a tiny cluster in well under
# a second; past this the process group is killed.
STOP_GRACE_S = 10.0
PROBE_INTERVAL_S = 0.1
# A port picked as free may be taken before the server binds it.
START_ATTEMPTS = 3
# Throw-away data: no durability, so the tests do not wait on the disk.
_TEST_SETTINGS = {
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "200",
}
# Accounts tried, in order, when running as root.
_UNPRIVILEGED_USERS = ("postgres", "nobody")
# prctl option: signal to deliver when the parent process dies.
_PR_SET_PDEATHSIG = 1


class PostgresUnavailableError(RuntimeError):
    """PostgreSQL could not be found or did not come up."""


@dataclass(frozen=True)
class PostgresServer:
    """A running throw-away PostgreSQL cluster."""

    host: str
    port: int
    socket_dir: Path
    data_dir: Path
    log_path: Path
    os_user: str
    pid: int
    startup_s: float

    def url(self, dbname: str = "postgres") -> str:
        """Return a ``postgresql://`` URL for ``dbname`` as the superuser."""
        return f"postgresql://{SUPERUSER}@{self.host}:{self.port}/{dbname}"

    def connect(self, dbname: str = "postgres") -> psycopg.Connection[Any]:
        """Return an autocommit connection to ``dbname``."""
        return psycopg.connect(self.url(dbname), autocommit=True, connect_timeout=5)

    def create_database(self, prefix: str = "test") -> str:
        """Create an empty database with a unique name; return its URL."""
        name = f"{prefix}_{uuid.uuid4().hex[:12]}"
        with self.connect() as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)


def find_postgres_bindir() -> Path:
    """Return the newest ``/usr/lib/postgresql/*/bin`` that has initdb.

    Raises:
        PostgresUnavailableError: no PostgreSQL server binaries installed.
    """
    candidates = [Path(p).parent for p in glob.glob("/usr/lib/postgresql/*/bin/initdb")]
    found = shutil.which("initdb")
    if found:
        candidates.append(Path(found).parent)

    def major(path: Path) -> int:
        try:
            return int(path.parent.name)
        except ValueError:
            return 0

    for bindir in sorted(candidates, key=major, reverse=True):
        if (bindir / "postgres").exists():
            return bindir
    raise PostgresUnavailableError(
        "PostgreSQL server binaries not found (/usr/lib/postgresql/*/bin/initdb); "
        "install the postgresql package (scripts/bootstrap-system.sh does)"
    )


def _server_account() -> pwd.struct_passwd | None:
    """Return the account to run as (None: the current user)."""
    if os.geteuid() != 0:
        return None
    for name in _UNPRIVILEGED_USERS:
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    raise PostgresUnavailableError(
        "running as root, and neither of the accounts "
        f"{', '.join(_UNPRIVILEGED_USERS)} exists to run PostgreSQL as"
    )


def _as_account(account: pwd.struct_passwd | None) -> dict[str, Any]:
    """Return the Popen arguments that run a child as ``account``."""
    if account is None:
        return {}
    return {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []}


def _child_env(account: pwd.struct_passwd | None) -> dict[str, str]:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C"}
    env["HOME"] = account.pw_dir if account else os.environ.get("HOME", "/tmp")
    return env


def _die_with_parent() -> None:
    """Ask Linux to SIGKILL the server if the test process dies first."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def _free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def _initdb(bindir: Path, data_dir: Path, account: pwd.struct_passwd | None) -> None:
    command = [
        str(bindir / "initdb"),
        "-D",
        str(data_dir),
        "-U",
        SUPERUSER,
        "-A",
        "trust",
        "-E",
        "UTF8",
        "--no-locale",
        "--no-sync",
    ]
    result = subprocess.run(
        command,
        capture_output=True,
        text=True,
        env=_child_env(account),
        timeout=INITDB_TIMEOUT_S,
        check=False,
        **_as_account(account),
    )
    if result.returncode != 0:
        raise PostgresUnavailableError(
            f"initdb {data_dir} failed with code {result.returncode}:\n"
            f"{result.stderr[-2000:]}"
        )


def _end_process(process: subprocess.Popen[bytes]) -> None:
    # SIGINT is PostgreSQL's fast shutdown.
    if end_process_group(process, STOP_GRACE_S, signal.SIGINT):
        _LOGGER.warning(
            "postgres: pid %d still running %.0f s after a fast shutdown; killed",
            process.pid,
            STOP_GRACE_S,
        )


def _probe(port: int) -> bool:
    try:
        with psycopg.connect(
            f"postgresql://{SUPERUSER}@{HOST}:{port}/postgres", connect_timeout=1
        ) as connection:
            connection.execute("SELECT 1")
        return True
    except psycopg.Error:
        return False


def _start_once(
    bindir: Path,
    work_dir: Path,
    account: pwd.struct_passwd | None,
    settings: Mapping[str, str],
    timeout_s: float,
) -> tuple[subprocess.Popen[bytes], PostgresServer]:
    port = _free_loopback_port()
    data_dir = work_dir / "data"
    log_path = work_dir / f"postgres-{port}.log"
    command = [
        str(bindir / "postgres"),
        "-D",
        str(data_dir),
        "-p",
        str(port),
        "-k",
        str(work_dir),
        "-c",
        f"listen_addresses={HOST}",
    ]
    for name, value in {**_TEST_SETTINGS, **settings}.items():
        command += ["-c", f"{name}={value}"]
    started = time.monotonic()
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=_child_env(account),
            start_new_session=True,
            preexec_fn=_die_with_parent if sys.platform == "linux" else None,
            **_as_account(account),
        )
    deadline = started + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise PostgresUnavailableError(
                f"postgres exited with code {process.returncode} during start-up; "
                f"log {log_path}:\n{log_tail(log_path)}"
            )
        if _probe(port):
            server = PostgresServer(
                host=HOST,
                port=port,
                socket_dir=work_dir,
                data_dir=data_dir,
                log_path=log_path,
                os_user=account.pw_name if account else pwd.getpwuid(os.getuid())[0],
                pid=process.pid,
                startup_s=time.monotonic() - started,
            )
            return process, server
        time.sleep(PROBE_INTERVAL_S)
    _end_process(process)
    raise PostgresUnavailableError(
        f"postgres did not answer within {timeout_s:.0f} s; "
        f"log {log_path}:\n{log_tail(log_path)}"
    )


@contextlib.contextmanager
def run_postgres(
    *,
    settings: Mapping[str, str] | None = None,
    startup_timeout_s: float = STARTUP_TIMEOUT_S,
) -> Iterator[PostgresServer]:
    """Run a throw-away PostgreSQL cluster for the duration of the block.

    ``settings`` adds or overrides server settings (``-c name=value``). The
    cluster lives in a new folder under the system's temporary directory
    (not pytest's, which an unprivileged account cannot enter) and is
    removed afterwards.

    Raises:
        PostgresUnavailableError: no binaries, no account to run as, initdb
            failed, or no answer after ``START_ATTEMPTS`` attempts.
    """
    bindir = find_postgres_bindir()
    account = _server_account()
    work_dir = Path(tempfile.mkdtemp(prefix="suitlink-pg-"))
    try:
        if account is not None:
            os.chown(work_dir, account.pw_uid, account.pw_gid)
        _initdb(bindir, work_dir / "data", account)
        error: PostgresUnavailableError | None = None
        for attempt in range(1, START_ATTEMPTS + 1):
            try:
                process, server = _start_once(
                    bindir, work_dir, account, settings or {}, startup_timeout_s
                )
            except PostgresUnavailableError as exc:
                _LOGGER.warning(
                    "postgres: start attempt %d/%d failed: %s",
                    attempt,
                    START_ATTEMPTS,
                    exc,
                )
                error = exc
                continue
            _LOGGER.info(
                "postgres: %s:%d ready after %.1f s (pid %d, user %s)",
                server.host,
                server.port,
                server.startup_s,
                server.pid,
                server.os_user,
            )
            try:
                yield server
            finally:
                _end_process(process)
            return
        assert error is not None
        raise error
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """Provide one throw-away PostgreSQL cluster for the whole test session."""
    if os.environ.get("SUITLINK_SKIP_POSTGRES") == "1":
        pytest.skip("SUITLINK_SKIP_POSTGRES=1: PostgreSQL tests disabled")
    with run_postgres() as server:
        yield server
