"""The flaky proxy test tool: forwarding, stall, reset, refuse, throttle."""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from collections.abc import Iterator

import boto3
import pytest
from botocore.config import Config
from mqtt_helpers import wait_until

from tests.support.flaky_proxy import (
    MAX_FAULT_S,
    THROTTLE_SLICE_S,
    FlakyProxy,
    run_flaky_proxy,
    stall,
)
from tests.support.seaweed import SeaweedS3, seaweed_s3

__all__ = ["seaweed_s3"]

# Reads that must see nothing wait this long; they pass on a slow machine
# too, since a stalled proxy forwards nothing however long one waits.
QUIET_S = 0.3
SOCKET_TIMEOUT_S = 10.0


@contextlib.contextmanager
def echo_server() -> Iterator[int]:
    """Run a loopback TCP echo server; yield its port."""
    listener = socket.create_server(("127.0.0.1", 0))
    # accept() does not wake up when another thread closes the socket.
    listener.settimeout(0.05)
    stopping = threading.Event()

    def serve(conn: socket.socket) -> None:
        with conn:
            while not stopping.is_set():
                try:
                    data = conn.recv(65536)
                except OSError:
                    return
                if not data:
                    return
                conn.sendall(data)

    def accept() -> None:
        while not stopping.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conn.settimeout(None)
            threading.Thread(target=serve, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stopping.set()
        thread.join(SOCKET_TIMEOUT_S)
        listener.close()


@pytest.fixture
def echo_proxy() -> Iterator[FlakyProxy]:
    with echo_server() as port, run_flaky_proxy(port) as proxy:
        yield proxy


def _connect(proxy: FlakyProxy) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", proxy.port), timeout=SOCKET_TIMEOUT_S)
    return sock


def _receive(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            break
        data += chunk
    return data


def test_proxy_forwards_both_ways(echo_proxy: FlakyProxy) -> None:
    payload = os.urandom(200_000)
    with _connect(echo_proxy) as sock:
        sender = threading.Thread(target=sock.sendall, args=(payload,))
        sender.start()
        assert _receive(sock, len(payload)) == payload
        sender.join(SOCKET_TIMEOUT_S)
    # The proxy counts a chunk after handing it on; the count may trail.
    stats = echo_proxy.stats
    wait_until(lambda: stats.bytes_down == len(payload), "proxy byte count")
    assert stats.bytes_up == len(payload)


def test_stall_holds_bytes_until_it_ends(echo_proxy: FlakyProxy) -> None:
    with _connect(echo_proxy) as sock:
        sock.sendall(b"before")
        assert _receive(sock, 6) == b"before"
        echo_proxy.stall(60)
        sock.sendall(b"during")
        sock.settimeout(QUIET_S)
        with pytest.raises(TimeoutError):
            sock.recv(100)
        echo_proxy.unstall()
        sock.settimeout(SOCKET_TIMEOUT_S)
        assert _receive(sock, 6) == b"during"


def test_reset_aborts_open_connections(echo_proxy: FlakyProxy) -> None:
    with _connect(echo_proxy) as sock:
        sock.sendall(b"x")
        assert _receive(sock, 1) == b"x"
        assert echo_proxy.reset_connections() == 1
        with pytest.raises(ConnectionResetError):
            sock.recv(100)
    assert echo_proxy.stats.resets == 1


def test_refuse_resets_new_connections(echo_proxy: FlakyProxy) -> None:
    echo_proxy.refuse(True)
    # The RST may beat the end of connect() or come at the first recv().
    with pytest.raises(ConnectionResetError), _connect(echo_proxy) as sock:
        sock.sendall(b"x")
        sock.recv(100)
    echo_proxy.refuse(False)
    with _connect(echo_proxy) as sock:
        sock.sendall(b"back")
        assert _receive(sock, 4) == b"back"
    assert echo_proxy.stats.refused == 1


def test_throttle_caps_the_rate(echo_proxy: FlakyProxy) -> None:
    rate = 4000
    echo_proxy.throttle(rate, "up")
    payload = os.urandom(20_000)
    with _connect(echo_proxy) as sock:
        started = time.monotonic()
        sock.sendall(payload)
        sock.settimeout(0.1)
        received = 0
        while time.monotonic() - started < 1.0:
            with contextlib.suppress(TimeoutError):
                received += len(sock.recv(65536))
        elapsed_s = time.monotonic() - started
    # Never faster than the rate (plus the slice read before the first wait);
    # a slow machine only forwards less.
    assert 0 < received <= rate * elapsed_s + rate * THROTTLE_SLICE_S
    assert received < len(payload)


def test_proxy_refuses_non_loopback_upstreams_and_unbounded_faults() -> None:
    with pytest.raises(ValueError, match="loopback only"):
        FlakyProxy(80, "192.0.2.1")
    with pytest.raises(ValueError, match="outside"):
        stall(MAX_FAULT_S + 1)


@pytest.mark.s3
def test_proxy_carries_s3_traffic_through_a_reset(seaweed_s3: SeaweedS3) -> None:
    bucket = seaweed_s3.new_bucket("proxy")
    upstream = int(seaweed_s3.endpoint_url.rsplit(":", 1)[1])
    body = os.urandom(1024 * 1024)
    with run_flaky_proxy(upstream) as proxy:
        proxy.throttle(256 * 1024, "up")
        s3 = boto3.client(
            "s3",
            endpoint_url=f"http://127.0.0.1:{proxy.port}",
            aws_access_key_id=seaweed_s3.access_key_id,
            aws_secret_access_key=seaweed_s3.secret_access_key,
            region_name=seaweed_s3.region,
            config=Config(
                s3={"addressing_style": "path"},
                connect_timeout=5,
                read_timeout=30,
                retries={"max_attempts": 3, "mode": "standard"},
            ),
        )
        errors: list[BaseException] = []

        def put() -> None:
            try:
                s3.put_object(Bucket=bucket, Key="through-proxy", Body=body)
            except BaseException as exc:
                errors.append(exc)

        uploader = threading.Thread(target=put)
        uploader.start()
        wait_until(lambda: proxy.stats.bytes_up > 100_000, "upload under way")
        assert proxy.reset_connections() >= 1
        uploader.join(60)
        proxy.throttle(None)
        assert not errors, errors
        got = s3.get_object(Bucket=bucket, Key="through-proxy")["Body"].read()
    assert got == body
    # botocore retried the reset request on a fresh connection.
    assert proxy.stats.accepted >= 2
