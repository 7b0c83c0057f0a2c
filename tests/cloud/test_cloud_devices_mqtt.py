"""Live device data end to end: TLS Mosquitto, SeaweedFS, PostgreSQL catalog.

The broker runs the shipped ``deploy/mosquitto`` config and ACL with
certificates from the fleet CA; devices publish with their own
certificates and the worker connects as the ``cloud-coordinator`` service
account through the shared subscription. Every wait is a hang guard, not a
timed assertion.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from cloud_coordinator.broker import CloudMqttClient, MessageHandler
from cloud_coordinator.catalog import Device, ObjectFilter, ObjectKind, PostgresCatalog
from cloud_coordinator.config import BrokerConfig
from cloud_coordinator.devices import DeviceDataWorker, DeviceWorkerSettings
from cloud_coordinator.devices.csvfile import decode_window
from edge_agent.upload import BucketNames, ObjectStore, S3Store
from tests.mqtt.mqtt_helpers import Observer
from tests.mqtt.test_broker_support import (
    FleetPki,
    deploy_broker_settings,
    make_fleet_pki,
)
from tests.support.certs import BROKER_NAME
from tests.support.mosquitto import MosquittoBroker, run_mosquitto
from tests.support.postgres import PostgresServer
from tests.support.seaweed import SeaweedS3

pytestmark = pytest.mark.s3

PROJECT_ROOT = Path(__file__).resolve().parents[2]
# Hang guards only: each step takes seconds on an idle machine.
WAIT_S = 120.0
SAMPLE_RATE_HZ = 100


def wait_until(predicate: Callable[[], bool], what: str) -> None:
    """Poll ``predicate`` until it holds (TimeoutError naming ``what``)."""
    deadline = time.monotonic() + WAIT_S
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not reached within {WAIT_S} s")
        time.sleep(0.05)


@dataclass
class World:
    """Broker, store, buckets and catalog of one test."""

    fleet: FleetPki
    broker: MosquittoBroker
    store: ObjectStore
    buckets: BucketNames
    quarantine_bucket: str
    catalog: PostgresCatalog
    catalog_url: str
    catalog_schema: str
    seaweed: SeaweedS3

    def broker_config(self) -> BrokerConfig:
        pair = self.fleet.client("cloud-coordinator")
        return BrokerConfig(
            host="127.0.0.1",
            port=self.broker.port,
            ca_file=str(self.fleet.ca_file),
            cert_file=str(pair.cert_file),
            key_file=str(pair.key_file),
            tls_server_name=BROKER_NAME,
            client_id="cloud-coordinator",
        )

    def subscribed(self, client_id: str) -> bool:
        return f"{client_id} 1 $share/devices/devices/+/data" in self.broker.log_text()

    def windows(self) -> dict[str, dict[int, dict[str, str]]]:
        """Return every window object's rows by key."""
        return {
            summary.key: decode_window(
                self.store.get_object(self.buckets.raw, summary.key), summary.key
            )
            for summary in self.store.list_objects(self.buckets.raw)
        }

    def catalogued_samples(self) -> int:
        page = self.catalog.list_objects(ObjectFilter(kind=ObjectKind.RAW), limit=1000)
        return sum(item.sample_count or 0 for item in page.items)


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> FleetPki:
    return make_fleet_pki(tmp_path_factory.mktemp("fleet"), devices=("d-1", "d-2"))


@pytest.fixture
def world(
    tmp_path: Path,
    fleet: FleetPki,
    seaweed_s3: SeaweedS3,
    catalog_database: str,
    postgres_server: PostgresServer,
) -> Iterator[World]:
    settings = deploy_broker_settings(fleet)
    assert settings.template is not None
    # Subscriptions in the broker log tell the test when a worker listens.
    settings = type(settings)(template=settings.template + "log_type subscribe\n")
    suffix = uuid.uuid4().hex[:8]
    buckets = BucketNames(
        raw=f"raw-{suffix}",
        analytics=f"analytics-{suffix}",
        crash=f"crash-{suffix}",
        archive=f"archive-{suffix}",
    )
    store = S3Store.connect(
        seaweed_s3.endpoint_url,
        access_key_id=seaweed_s3.access_key_id,
        secret_access_key=seaweed_s3.secret_access_key,
        region=seaweed_s3.region,
    )
    schema = f"t_{suffix}"
    catalog = PostgresCatalog(catalog_database, schema=schema)
    catalog.migrate()
    catalog.upsert_device(Device("d-1", "rider-1", "SUIT-1"))
    with run_mosquitto(tmp_path / "broker", settings) as broker:
        yield World(
            fleet,
            broker,
            store,
            buckets,
            f"quarantine-{suffix}",
            catalog,
            catalog_database,
            schema,
            seaweed_s3,
        )
    catalog.close()


def _worker(
    world: World, worker_id: str, *, ack: bool = True, **overrides: Any
) -> DeviceDataWorker:
    options: dict[str, Any] = {
        "window_s": 60.0,
        "flush_interval_s": 0.5,
        "max_batch_messages": 900,
        "quarantine_bucket": world.quarantine_bucket,
    }
    options.update(overrides)
    settings = DeviceWorkerSettings(worker_id=worker_id, **options)

    def factory(handler: MessageHandler) -> CloudMqttClient:
        client = CloudMqttClient(
            world.broker_config(),
            client_id=f"cloud-coordinator-devices-{worker_id}",
            handler=handler,
            subscriptions=[(settings.subscription, 1)],
            manual_ack=True,
            session_expiry_s=3600,
        )
        if not ack:
            # The worker "dies" after its commits, before any acknowledgement.
            client.ack = lambda message: None  # type: ignore[method-assign]
        return client

    return DeviceDataWorker(
        settings, world.store, world.catalog, world.buckets, factory
    )


class Running:
    """A worker in a thread of the test process."""

    def __init__(self, worker: DeviceDataWorker, world: World) -> None:
        self.worker = worker
        self.stop = threading.Event()
        self.thread = threading.Thread(target=worker.run, args=(self.stop,))
        self.thread.start()
        client_id = f"cloud-coordinator-devices-{worker.settings.worker_id}"
        wait_until(lambda: world.subscribed(client_id), "worker subscribed")

    def close(self) -> None:
        self.stop.set()
        self.thread.join(WAIT_S)
        assert not self.thread.is_alive()


def _sample(t_us: int, number: int) -> dict[str, Any]:
    return {
        "schema": "device-sample/1",
        "ts": t_us,
        "ts_unit": "us",
        "readings": {
            "acc_x": {"value": round(0.001 * (number % 997), 3), "unit": "g"},
            "gyr_z": {"value": number % 360, "unit": "deg/s"},
        },
    }


def _malformed(number: int, t_us: int) -> bytes:
    """Return one of several kinds of bad message, unique per ``number``."""
    kinds: list[Any] = [
        b"not json %d" % number,
        {"schema": "device-sample/1", "ts": t_us, "readings": {"acc_x": number}},
        {**_sample(t_us, number), "ts_unit": None},
        {**_sample(t_us + 10**15, number)},  # decades ahead
        {**_sample(t_us, number), "schema": f"other/{number}"},
        {
            **_sample(t_us, number),
            "readings": {"acc_x": {"value": 500 + number, "unit": "g"}},
        },
    ]
    chosen = kinds[number % len(kinds)]
    return chosen if isinstance(chosen, bytes) else json.dumps(chosen).encode()


def _publish(world: World, device: str, payloads: list[bytes]) -> None:
    publisher = Observer(
        world.broker.port,
        [],
        tls=(world.fleet, world.fleet.client(device)),  # type: ignore[arg-type]
    )
    mids = [publisher.publish(f"devices/{device}/data", data) for data in payloads]
    for mid in mids:
        assert str(publisher.wait_puback(mid, WAIT_S)) == "Success"
    publisher.close()


def _start_us() -> int:
    start = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    return int(start.timestamp()) * 1_000_000


def test_devices_10000_samples_over_tls_end_up_once_in_raw_objects(
    world: World,
) -> None:
    start_us = _start_us()
    step_us = 1_000_000 // SAMPLE_RATE_HZ
    payloads: list[bytes] = []
    expected: dict[int, int] = {}
    malformed = 0
    for number in range(10_000):
        t_us = start_us + number * step_us
        if number % 37 == 5:
            payloads.append(_malformed(number, t_us))
            malformed += 1
        else:
            payloads.append(json.dumps(_sample(t_us, number)).encode())
            expected[t_us] = number
    # Valid samples of an unregistered device; the first two are the same
    # message, which is kept aside once.
    unknown = [json.dumps(_sample(start_us, max(n, 1))).encode() for n in range(5)]

    running = Running(_worker(world, "w1"), world)
    _publish(world, "d-1", payloads)
    _publish(world, "d-2", unknown)  # valid, but d-2 is not registered
    total = len(payloads) + len(unknown)
    wait_until(lambda: running.worker.stats.acknowledged >= total, "all acknowledged")
    running.close()
    stats = running.worker.stats

    # Every valid sample exactly once, with its values, across the windows.
    windows = world.windows()
    seen = Counter(t_us for rows in windows.values() for t_us in rows)
    assert set(seen) == set(expected)
    assert max(seen.values()) == 1
    rows = {t_us: row for window in windows.values() for t_us, row in window.items()}
    for t_us, number in list(expected.items())[::500]:
        assert float(rows[t_us]["gyr_z_rads"]) == pytest.approx(
            (number % 360) * 3.141592653589793 / 180
        )
    assert len(windows) >= 2  # 100 s of samples in 60 s windows
    assert all(key.startswith("rider-1/SUIT-1/") for key in windows)

    # Catalogued: one row per object, counts and checksums matching.
    assert world.catalogued_samples() == len(expected)
    for key in windows:
        row = world.catalog.get_object_by_key(world.buckets.raw, key)
        info = world.store.head_object(world.buckets.raw, key)
        assert row is not None and info is not None
        assert row.sha256_hex == info.metadata["sha256"]
        assert row.rider_id == "rider-1" and row.object_type == "device_csv"

    # The malformed and the unregistered device's messages: counted, kept.
    assert stats.malformed_total == malformed + len(unknown)
    assert stats.malformed["unknown_device"] == len(unknown)
    assert stats.samples_committed == len(expected)
    kept = world.store.list_objects(world.quarantine_bucket)
    assert len(kept) == malformed + 4
    assert sum(1 for item in kept if item.key.startswith("devices/d-2/")) == 4
    document = json.loads(world.store.get_object(world.quarantine_bucket, kept[0].key))
    assert document["schema"] == "device-quarantine/1"
    assert document["topic"].startswith("devices/d-")
    assert document["reason"] in stats.malformed


def test_devices_redelivery_after_commit_without_ack_adds_nothing(
    world: World,
) -> None:
    start_us = _start_us()
    payloads = [
        json.dumps(_sample(start_us + n * 10_000, n)).encode() for n in range(300)
    ]
    first = Running(_worker(world, "w2", ack=False, max_batch_messages=100), world)
    _publish(world, "d-1", payloads)
    wait_until(lambda: first.worker.stats.samples_committed >= 300, "first commit")
    first.close()
    before = {
        key: world.store.head_object(world.buckets.raw, key) for key in world.windows()
    }

    second = Running(_worker(world, "w2"), world)
    wait_until(lambda: second.worker.stats.acknowledged >= 300, "redelivered")
    second.close()

    assert first.worker.stats.acknowledged == 300  # flushed, but no PUBACK sent
    assert second.worker.stats.repeats == 300
    assert second.worker.stats.samples_committed == 0
    after = {
        key: world.store.head_object(world.buckets.raw, key) for key in world.windows()
    }
    assert {k: v.etag for k, v in after.items() if v} == {
        k: v.etag for k, v in before.items() if v
    }
    assert world.catalogued_samples() == 300


def _config_file(world: World, path: Path, worker_id: str) -> Path:
    broker = world.broker_config()
    seaweed = world.seaweed
    path.write_text(
        f"""
[catalog]
url = "{world.catalog_url}"
schema = "{world.catalog_schema}"

[store]
kind = "s3"
endpoint_url = "{seaweed.endpoint_url}"
region = "{seaweed.region}"
access_key_id = "{seaweed.access_key_id}"
secret_access_key = "{seaweed.secret_access_key}"

[buckets]
raw = "{world.buckets.raw}"
analytics = "{world.buckets.analytics}"
crash = "{world.buckets.crash}"
archive = "{world.buckets.archive}"

[broker]
host = "127.0.0.1"
port = {broker.port}
ca_file = "{broker.ca_file}"
cert_file = "{broker.cert_file}"
key_file = "{broker.key_file}"
tls_server_name = "{BROKER_NAME}"

[devices]
worker_id = "{worker_id}"
window_s = 60.0
flush_interval_s = 3600.0
idle_flush_s = 3600.0
max_batch_messages = 400
quarantine_bucket = "{world.quarantine_bucket}"
"""
    )
    return path


def _spawn(config: Path, log: Path, **env: str) -> subprocess.Popen[bytes]:
    environment = dict(os.environ, PYTHONPATH=str(PROJECT_ROOT), **env)
    command = [sys.executable, "-m", "cloud_coordinator.cli", "--config", str(config)]
    with log.open("ab") as stream:
        return subprocess.Popen(
            [*command, "devices", "run"],
            stdout=stream,
            stderr=stream,
            env=environment,
            cwd=PROJECT_ROOT,
        )


def test_devices_worker_killed_mid_batch_loses_and_duplicates_nothing(
    world: World, tmp_path: Path
) -> None:
    config = _config_file(world, tmp_path / "coordinator.toml", "wk")
    log = tmp_path / "worker.log"
    client_id = "cloud-coordinator-devices-wk"
    start_us = _start_us()
    payloads = [
        json.dumps(_sample(start_us + n * 10_000, n)).encode() for n in range(1000)
    ]

    # Flushes happen at 400 messages only: after 1000 messages, 800 are
    # committed and acknowledged and 200 wait in the batch when it is killed.
    worker = _spawn(config, log)
    try:
        wait_until(lambda: world.subscribed(client_id), "worker subscribed")
        _publish(world, "d-1", payloads)
        wait_until(lambda: world.catalogued_samples() >= 800, "two flushes")
        worker.send_signal(signal.SIGKILL)
        worker.wait(WAIT_S)
        assert world.catalogued_samples() == 800

        # The restarted worker gets the 200 from its session and flushes soon.
        worker = _spawn(config, log, CLOUD_COORDINATOR_DEVICES_IDLE_FLUSH_S="0.5")
        wait_until(lambda: world.catalogued_samples() >= 1000, "after restart")
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(WAIT_S) == 0, log.read_text()[-3000:]
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait(WAIT_S)

    windows = world.windows()
    seen = Counter(t_us for rows in windows.values() for t_us in rows)
    assert sorted(seen) == [start_us + n * 10_000 for n in range(1000)]
    assert set(seen.values()) == {1}
    assert world.catalogued_samples() == 1000
