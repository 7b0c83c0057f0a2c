"""Ingest throughput on real parts, against what the fleet's upload volume needs.

How to run (from the repository root, dev install; loopback only)::

    .venv/bin/python benchmarks/bench_ingest.py                 # many small logs
    .venv/bin/python benchmarks/bench_ingest.py --logs 12 --raw-mb 50
    .venv/bin/python benchmarks/bench_ingest.py --workers 2 --threads 2

What it does, every step bounded in count and time:

1. Starts a throw-away PostgreSQL, SeaweedFS (S3) and a TLS Mosquitto with
   the shipped ACL (``tests/support``), all on 127.0.0.1 ephemeral ports.
2. Uploads ``--logs`` logs as a gateway would (a raw CSV of ``--raw-mb`` or
   ``--raw-kb``, its analytics JSON, and a crash copy for ``--crash-share``
   of them) with the gateway's metadata. Uploading is not timed.
3. Starts ``--workers`` ``cloud-coordinator ingest`` processes (``--threads``
   each, ``[ingest] verify`` = ``--verify``, reconciliation and relay off)
   and waits until they subscribed.
4. Publishes every log's events at once from the gateway's certificate
   (QoS 1) and times from the first publish until the catalog recorded
   every event; reports events/s, objects catalogued/s and verified MB/s.

Baseline printed beside the figures: the rate that 3.5 TB a week of
50-250 MB uploads needs at a 10x peak (computed below). On a host of few
cores the broker, SeaweedFS, PostgreSQL and the workers share the CPU, so
the figures are a lower bound on what dedicated servers would do.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import gzip
import hashlib
import json
import os
import signal
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import psycopg
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cloud_coordinator.catalog import PostgresCatalog  # noqa: E402
from edge_agent.mqtt.events import EventType, GatewayEvent  # noqa: E402
from edge_agent.mqtt.tls import ExpectedNameContext  # noqa: E402
from edge_agent.upload import (  # noqa: E402
    BodyChecksum,
    BucketNames,
    ChecksumMode,
    ObjectLayout,
    ObjectMetadata,
    S3Store,
)
from tests.support.certs import BROKER_NAME, TestPki, make_pki  # noqa: E402
from tests.support.mosquitto import (  # noqa: E402
    BrokerSettings,
    MosquittoBroker,
    TlsListener,
    run_mosquitto,
)
from tests.support.postgres import run_postgres  # noqa: E402
from tests.support.seaweed import SeaweedS3, run_seaweed  # noqa: E402

ACL = ROOT / "deploy" / "mosquitto" / "aclfile.example"
# The fleet's volume (issue 5) and the size range of one upload.
WEEKLY_BYTES = 3.5e12
UPLOAD_BYTES = (50e6, 250e6)
PEAK_FACTOR = 10.0
WEEK_S = 7 * 24 * 3600.0
# Objects a log becomes: raw CSV and analytics (a crash copy is rare).
OBJECTS_PER_LOG = 2
# Upper bounds on every wait of the benchmark.
START_TIMEOUT_S = 60.0
RUN_TIMEOUT_S = 1800.0
POLL_S = 0.05
START = dt.datetime(2026, 3, 1, 8, 0, tzinfo=dt.UTC)


@dataclass(frozen=True)
class Need:
    """What the fleet needs of ingest at the peak."""

    average_bytes_per_s: float
    peak_bytes_per_s: float
    peak_logs_per_s: tuple[float, float]  # with 250 MB and 50 MB uploads

    @property
    def peak_events_per_s(self) -> float:
        """Return the events per second at the peak (small uploads: most)."""
        return self.peak_logs_per_s[1]

    @property
    def peak_objects_per_s(self) -> float:
        """Return the objects per second at the peak (small uploads: most)."""
        return self.peak_logs_per_s[1] * OBJECTS_PER_LOG


def fleet_need() -> Need:
    """Return the rate 3.5 TB a week of 50-250 MB uploads needs at 10x peak."""
    average = WEEKLY_BYTES / WEEK_S
    peak = average * PEAK_FACTOR
    return Need(average, peak, (peak / UPLOAD_BYTES[1], peak / UPLOAD_BYTES[0]))


@dataclass
class Log:
    """One uploaded log and its events' JSON."""

    log_id: str
    events: list[str]
    bytes_stored: int


def _raw_body(size_bytes: int, seed: int) -> bytes:
    """Return gzip data of about ``size_bytes`` (random, so it does not shrink)."""
    chunk = hashlib.sha256(str(seed).encode()).digest() * 2048
    data = bytearray()
    while len(data) < size_bytes:
        data += hashlib.blake2b(chunk + len(data).to_bytes(8, "big")).digest() * 1024
    return gzip.compress(bytes(data[:size_bytes]), compresslevel=0)


def upload_logs(
    store: S3Store, buckets: BucketNames, args: argparse.Namespace
) -> list[Log]:
    """Put every log's objects in the store as a gateway does."""
    layout = ObjectLayout(buckets)
    raw_bytes = int(args.raw_mb * 1e6) if args.raw_mb else args.raw_kb * 1000
    raw = _raw_body(raw_bytes, 0)
    crash_every = round(1 / args.crash_share) if args.crash_share > 0 else 0
    logs: list[Log] = []
    for index in range(args.logs):
        log_id = f"log-{index:06d}-{uuid.uuid4().hex[:8]}"
        rider = f"r{index % 250:03d}"
        suit = f"SUIT-{index % 250:03d}"
        crash = bool(crash_every) and index % crash_every == 0
        analytics = json.dumps(
            {
                "schema": "ride-analytics/1",
                "log_id": log_id,
                "rider_id": rider,
                "suit_id": suit,
                "start_utc": START.isoformat(),
                "crash": {"detected": crash, "events": []},
            }
        ).encode()
        # Each raw object differs (its own SHA-256) without regenerating it.
        body = raw + log_id.encode()
        refs = [
            ("raw_csv", layout.raw_csv(rider, suit, START.date(), log_id), body),
            ("analytics", layout.analytics(rider, suit, log_id), analytics),
        ]
        if crash:
            refs.append(
                ("crash_raw_csv", layout.crash(rider, suit, log_id, "raw.csv.gz"), body)
            )
        keys: dict[str, str] = {}
        stored = 0
        for name, ref, data in refs:
            metadata = ObjectMetadata(
                sha256_hex=hashlib.sha256(data).hexdigest(),
                log_id=log_id,
                suit_id=suit,
                rider_id=rider,
                kind=name,
                log_start_utc=START.isoformat(),
            )
            store.put_object(
                ref.bucket,
                ref.key,
                data,
                metadata=metadata.to_s3(),
                checksum=BodyChecksum.of(data, ChecksumMode.MD5),
            )
            keys[name] = str(ref)
            stored += len(data)
        kinds = [EventType.LOG_UPLOADED] + ([EventType.CRASH_DETECTED] if crash else [])
        events = [
            GatewayEvent.create(
                kind,
                gateway_id="gw-1",
                rider_id=rider,
                suit_id=suit,
                log_id=log_id,
                object_keys=keys,
                sha256=hashlib.sha256(log_id.encode()).hexdigest(),
            ).to_payload()
            for kind in kinds
        ]
        logs.append(Log(log_id, events, stored))
    return logs


def _config(
    path: Path,
    *,
    database: str,
    seaweed: SeaweedS3,
    buckets: BucketNames,
    broker: MosquittoBroker,
    pki: TestPki,
    args: argparse.Namespace,
) -> None:
    cloud = pki.clients["cloud-coordinator"]
    path.write_text(
        f"""
[catalog]
url = "{database}"

[store]
kind = "s3"
endpoint_url = "{seaweed.endpoint_url}"
access_key_id = "{seaweed.access_key_id}"
secret_access_key = "{seaweed.secret_access_key}"
region = "{seaweed.region}"

[buckets]
raw = "{buckets.raw}"
analytics = "{buckets.analytics}"
crash = "{buckets.crash}"

[broker]
port = {broker.port}
ca_file = "{pki.ca_file}"
cert_file = "{cloud.cert_file}"
key_file = "{cloud.key_file}"
tls_server_name = "{BROKER_NAME}"

[ingest]
threads = {args.threads}
verify = "{args.verify}"
reconcile_interval_s = 0
relay_interval_s = 0
temp_dir = "{path.parent}"
"""
    )


@contextlib.contextmanager
def workers(config: Path, count: int, log_dir: Path) -> Iterator[list[Path]]:
    """Run ``count`` ingest processes; yield their log files."""
    processes: list[subprocess.Popen[bytes]] = []
    logs: list[Path] = []
    try:
        for index in range(count):
            log_path = log_dir / f"worker-{index}.log"
            with open(log_path, "wb") as log:
                processes.append(
                    subprocess.Popen(
                        [
                            sys.executable,
                            "-m",
                            "cloud_coordinator.cli",
                            "--config",
                            str(config),
                            "ingest",
                            "--client-id",
                            f"bench-ingest-{index}",
                        ],
                        cwd=ROOT,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,
                    )
                )
            logs.append(log_path)
        yield logs
    finally:
        for process in processes:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
        for process in processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=30)


def _wait(what: str, condition: Any, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"bench_ingest: timed out waiting for {what}")
        time.sleep(POLL_S)


def publish_all(broker: MosquittoBroker, pki: TestPki, logs: list[Log]) -> float:
    """Publish every event from gw-1 (QoS 1); return when the first one left."""
    pair = pki.clients["gw-1"]
    context = ExpectedNameContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(cafile=pki.ca_file)
    context.load_cert_chain(pair.cert_file, pair.key_file)
    context.expected_name = BROKER_NAME
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id="bench-gw-1",
        protocol=MQTTProtocolVersion.MQTTv5,
    )
    client.tls_set_context(context)
    client.max_inflight_messages_set(1000)
    connected = threading.Event()
    client.on_connect = lambda *_: connected.set()
    client.connect("127.0.0.1", broker.port)
    client.loop_start()
    try:
        _wait("the gateway's connection", connected.is_set, START_TIMEOUT_S)
        started = time.monotonic()
        infos = [
            client.publish("gateways/gw-1/events", payload, qos=1)
            for log in logs
            for payload in log.events
        ]
        for info in infos:
            info.wait_for_publish(RUN_TIMEOUT_S)
        return started
    finally:
        client.disconnect()
        client.loop_stop()


def _count(database: str, table: str) -> int:
    with psycopg.connect(database, autocommit=True) as connection:
        row = connection.execute(f"SELECT count(*) FROM {table}").fetchone()
    return int(row[0]) if row else 0


def run(args: argparse.Namespace) -> dict[str, float]:
    """Run the benchmark once; return its figures."""
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as folder:
        work = Path(folder)
        pki = make_pki(work / "pki", clients=("gw-1", "cloud-coordinator"))
        settings = BrokerSettings(
            tls=TlsListener(pki.ca_file, pki.server.cert_file, pki.server.key_file),
            acl_text=ACL.read_text(),
        )
        with (
            run_postgres() as postgres,
            run_seaweed(work / "seaweed") as seaweed,
            run_mosquitto(work / "broker", settings) as broker,
        ):
            database = postgres.create_database("ingest")
            catalog = PostgresCatalog(database)
            catalog.migrate()
            catalog.close()
            store = S3Store.connect(
                seaweed.endpoint_url,
                access_key_id=seaweed.access_key_id,
                secret_access_key=seaweed.secret_access_key,
                region=seaweed.region,
            )
            buckets = BucketNames()
            for bucket in (buckets.raw, buckets.analytics, buckets.crash):
                store.ensure_bucket(bucket)
            print(f"uploading {args.logs} logs ...", flush=True)
            logs = upload_logs(store, buckets, args)
            events = sum(len(log.events) for log in logs)
            stored_bytes = sum(log.bytes_stored for log in logs)

            config = work / "ingest.toml"
            _config(
                config,
                database=database,
                seaweed=seaweed,
                buckets=buckets,
                broker=broker,
                pki=pki,
                args=args,
            )
            with workers(config, args.workers, work) as log_files:
                _wait(
                    "the workers' subscriptions",
                    lambda: all("consuming" in p.read_text() for p in log_files),
                    START_TIMEOUT_S,
                )
                started = publish_all(broker, pki, logs)
                _wait(
                    f"{events} events catalogued",
                    lambda: _count(database, "ingest_events") >= events,
                    RUN_TIMEOUT_S,
                )
                elapsed_s = time.monotonic() - started
            objects = _count(database, "objects")
            quarantined = _count(database, "ingest_quarantine")
    return {
        "events": events,
        "objects": objects,
        "quarantined": quarantined,
        "elapsed_s": elapsed_s,
        "events_per_s": events / elapsed_s,
        "objects_per_s": objects / elapsed_s,
        "mb_per_s": stored_bytes / 1e6 / elapsed_s,
        "stored_mb": stored_bytes / 1e6,
    }


def report(args: argparse.Namespace, figures: dict[str, float]) -> None:
    """Print the figures beside what the fleet needs."""
    need = fleet_need()
    print()
    print("Fleet need (3.5 TB/week of 50-250 MB uploads, 10x peak):")
    print(
        f"  average {need.average_bytes_per_s / 1e6:.2f} MB/s; peak "
        f"{need.peak_bytes_per_s / 1e6:.1f} MB/s = "
        f"{need.peak_logs_per_s[0]:.3f}-{need.peak_logs_per_s[1]:.3f} logs/s "
        f"(250 MB-50 MB uploads) = up to {need.peak_events_per_s:.2f} events/s, "
        f"{need.peak_objects_per_s:.2f} objects/s"
    )
    print(
        f"Measured: {args.workers} worker(s) x {args.threads} threads, verify "
        f"{args.verify}, {figures['events']:.0f} events, {figures['objects']:.0f} "
        f"objects ({figures['stored_mb']:.1f} MB), {figures['quarantined']:.0f} "
        f"quarantined, in {figures['elapsed_s']:.2f} s"
    )
    print(
        f"  {figures['events_per_s']:.1f} events/s, "
        f"{figures['objects_per_s']:.1f} objects catalogued/s, "
        f"{figures['mb_per_s']:.1f} MB/s of uploads catalogued ("
        + ("read and hashed" if args.verify == "hash" else "metadata only, not read")
        + ")"
    )
    print(
        f"  vs peak need: {figures['events_per_s'] / need.peak_events_per_s:.1f}x "
        f"the events/s, {figures['mb_per_s'] * 1e6 / need.peak_bytes_per_s:.2f}x "
        "the bytes/s"
    )


def main() -> int:
    """Parse the command line, run, print."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--logs", type=int, default=400, help="logs (default 400)")
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--raw-kb", type=int, default=64, help="raw CSV size (kB)")
    size.add_argument("--raw-mb", type=float, default=0.0, help="raw CSV size (MB)")
    parser.add_argument("--crash-share", type=float, default=0.01)
    parser.add_argument("--workers", type=int, default=1, help="ingest processes")
    parser.add_argument("--threads", type=int, default=4, help="threads per worker")
    parser.add_argument("--verify", choices=("hash", "metadata"), default="hash")
    args = parser.parse_args()
    if not 1 <= args.logs <= 100_000 or not 1 <= args.workers <= 16:
        parser.error("--logs must be 1-100000 and --workers 1-16")
    report(args, run(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
