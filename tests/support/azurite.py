"""Start a throw-away Azurite blob service on loopback, for tests.

Azurite is Microsoft's Azure Storage emulator (npm package ``azurite``);
``scripts/install-azurite.sh`` installs the pinned version into
``.cache/azurite``. This module runs its blob service alone
(``azurite-blob``) on an ephemeral 127.0.0.1 port with its files in a
temporary folder, under a random account name and key (``AZURITE_ACCOUNTS``)
rather than the well-known development account, with telemetry off. Start-up
waits until an authenticated round trip (create container, put, delete)
succeeds; stop sends SIGTERM, then SIGKILL to the process group after a short
grace.

Use the session fixture ``azurite_blob`` (import it into a conftest) or the
context manager :func:`run_azurite`. ``SUITLINK_SKIP_AZURE=1`` skips the tests
that need it.
"""

from __future__ import annotations

import base64
import contextlib
import ctypes
import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from azure.core.exceptions import AzureError, ResourceExistsError
from azure.storage.blob import BlobServiceClient

from tests.support.processes import end_process_group, log_tail

__all__ = [
    "AzuriteBlob",
    "AzuriteUnavailableError",
    "azurite_blob",
    "find_azurite_binary",
    "run_azurite",
]

_LOGGER = logging.getLogger(__name__)

# A cold start of Node and Azurite takes about 2 s here; a loaded CI machine
# may need several times that.
STARTUP_TIMEOUT_S = 60.0
# Grace after SIGTERM before SIGKILL; the data folder is thrown away anyway.
STOP_GRACE_S = 3.0
# Pause between readiness probes.
PROBE_INTERVAL_S = 0.2
# A port picked as free may be taken before Azurite binds it.
START_ATTEMPTS = 3
# prctl option: signal to deliver when the parent process dies.
_PR_SET_PDEATHSIG = 1
_REPO_ROOT = Path(__file__).resolve().parents[2]
_INSTALL_HINT = "run scripts/install-azurite.sh (needs npm)"


class AzuriteUnavailableError(RuntimeError):
    """Azurite could not be found or did not come up."""


@dataclass(frozen=True)
class AzuriteBlob:
    """A running Azurite blob endpoint and the account to use it."""

    account_name: str
    account_key: str
    blob_endpoint: str
    data_dir: Path
    log_path: Path
    startup_s: float
    pid: int

    @property
    def connection_string(self) -> str:
        """Return the connection string of this endpoint and account."""
        return (
            "DefaultEndpointsProtocol=http;"
            f"AccountName={self.account_name};AccountKey={self.account_key};"
            f"BlobEndpoint={self.blob_endpoint};"
        )

    def client(self, *, retry_total: int = 1) -> BlobServiceClient:
        """Return a BlobServiceClient for this endpoint (few retries)."""
        return BlobServiceClient.from_connection_string(
            self.connection_string,
            connection_timeout=5,
            read_timeout=30,
            retry_total=retry_total,
        )


def find_azurite_binary() -> Path:
    """Return ``azurite-blob``: AZURITE_BLOB_BIN, .cache/azurite, then PATH.

    Raises:
        AzuriteUnavailableError: not installed.
    """
    configured = os.environ.get("AZURITE_BLOB_BIN")
    if configured:
        return Path(configured)
    local = _REPO_ROOT / ".cache" / "azurite" / "node_modules" / ".bin" / "azurite-blob"
    if local.exists():
        return local
    found = shutil.which("azurite-blob")
    if found:
        return Path(found)
    raise AzuriteUnavailableError(
        f"azurite-blob not found in {local.parent} or on PATH; {_INSTALL_HINT}"
    )


def _free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _probe(server: AzuriteBlob) -> bool:
    # No SDK retries: its exponential backoff starts at 15 s, and this loop
    # probes again after PROBE_INTERVAL_S anyway.
    container = server.client(retry_total=0).get_container_client("probe")
    try:
        with contextlib.suppress(ResourceExistsError):
            container.create_container()
        container.upload_blob("ready", b"ok", overwrite=True)
        container.delete_blob("ready")
    except AzureError:
        return False
    return True


def _die_with_parent() -> None:
    """Ask Linux to SIGKILL Azurite if the test process dies without cleaning up."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def _end_process(process: subprocess.Popen[bytes]) -> None:
    end_process_group(process, STOP_GRACE_S)


def _start_once(
    binary: Path, work_dir: Path, timeout_s: float
) -> tuple[subprocess.Popen[bytes], AzuriteBlob]:
    port = _free_loopback_port()
    data_dir = work_dir / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    account_name = "suitlink" + secrets.token_hex(4)
    account_key = base64.b64encode(secrets.token_bytes(64)).decode()
    command = [
        str(binary),
        "--blobHost",
        "127.0.0.1",
        "--blobPort",
        str(port),
        "--location",
        str(data_dir),
        "--skipApiVersionCheck",
        "--disableTelemetry",
        "--disableProductStyleUrl",
    ]
    env = {**os.environ, "AZURITE_ACCOUNTS": f"{account_name}:{account_key}"}
    log_path = work_dir / "azurite.log"
    started = time.monotonic()
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            command,
            cwd=work_dir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_die_with_parent if sys.platform == "linux" else None,
        )
    server = AzuriteBlob(
        account_name=account_name,
        account_key=account_key,
        blob_endpoint=f"http://127.0.0.1:{port}/{account_name}",
        data_dir=data_dir,
        log_path=log_path,
        startup_s=0.0,
        pid=process.pid,
    )
    deadline = started + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AzuriteUnavailableError(
                f"azurite-blob exited with code {process.returncode} during "
                f"start-up; log {log_path}:\n{log_tail(log_path)}"
            )
        if _probe(server):
            elapsed_s = time.monotonic() - started
            return process, AzuriteBlob(**{**server.__dict__, "startup_s": elapsed_s})
        time.sleep(PROBE_INTERVAL_S)
    _end_process(process)
    raise AzuriteUnavailableError(
        f"Azurite did not answer within {timeout_s:.0f} s; "
        f"log {log_path}:\n{log_tail(log_path)}"
    )


@contextlib.contextmanager
def run_azurite(
    work_dir: Path, *, startup_timeout_s: float = STARTUP_TIMEOUT_S
) -> Iterator[AzuriteBlob]:
    """Run Azurite's blob service in ``work_dir`` for the duration of the block.

    Raises:
        AzuriteUnavailableError: no binary, or no answer in time after
            ``START_ATTEMPTS`` attempts.
    """
    binary = find_azurite_binary()
    work_dir.mkdir(parents=True, exist_ok=True)
    error: AzuriteUnavailableError | None = None
    for attempt in range(1, START_ATTEMPTS + 1):
        try:
            process, server = _start_once(
                binary, work_dir / f"attempt-{attempt}", startup_timeout_s
            )
        except AzuriteUnavailableError as exc:
            _LOGGER.warning(
                "azurite: start attempt %d/%d failed: %s", attempt, START_ATTEMPTS, exc
            )
            error = exc
            continue
        _LOGGER.info(
            "azurite: blob service at %s ready after %.1f s (pid %d)",
            server.blob_endpoint,
            server.startup_s,
            server.pid,
        )
        try:
            yield server
        finally:
            _end_process(process)
        return
    assert error is not None
    raise error


@pytest.fixture(scope="session")
def azurite_blob(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AzuriteBlob]:
    """Provide one Azurite blob endpoint for the whole test session."""
    if os.environ.get("SUITLINK_SKIP_AZURE") == "1":
        pytest.skip("SUITLINK_SKIP_AZURE=1: Azurite tests disabled")
    with run_azurite(tmp_path_factory.mktemp("azurite")) as server:
        yield server
