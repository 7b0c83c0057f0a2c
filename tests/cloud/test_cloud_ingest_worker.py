"""Ingest workers on real parts: TLS Mosquitto (shipped ACL), SeaweedFS, PostgreSQL."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from cloud_broker_env import (
    PROJECT_ROOT,
    RawClient,
    cloud_broker_config,
    make_test_pki,
    raw_client,
    tls_broker,
)
from cloud_gateway_emu import unique_buckets, upload_log
from cloud_helpers import T0

from cloud_coordinator.catalog import (
    Catalog,
    ObjectFilter,
    ObjectKind,
    PostgresCatalog,
)
from cloud_coordinator.ingest import IngestWorker, WorkerSettings
from cloud_coordinator.notify import NotificationAudience, NotificationType
from edge_agent.upload import (
    BucketNames,
    LocalDirStore,
    ObjectStoreUnavailable,
    S3Store,
)
from tests.support.certs import TestPki
from tests.support.mosquitto import MosquittoBroker
from tests.support.seaweed import SeaweedS3

WAIT_S = 60.0


def wait_for(
    what: str, condition: Callable[[], bool], timeout_s: float = WAIT_S
) -> None:
    """Poll ``condition`` until true; fail naming ``what`` after the timeout."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> TestPki:
    return make_test_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def broker(tmp_path: Path, pki: TestPki) -> Iterator[MosquittoBroker]:
    with tls_broker(tmp_path / "broker", pki) as running:
        yield running


@pytest.fixture
def s3(seaweed_s3: SeaweedS3) -> S3Store:
    return S3Store.connect(
        seaweed_s3.endpoint_url,
        access_key_id=seaweed_s3.access_key_id,
        secret_access_key=seaweed_s3.secret_access_key,
        region=seaweed_s3.region,
    )


@pytest.fixture
def buckets(s3: S3Store) -> BucketNames:
    names = unique_buckets()
    for bucket in (names.raw, names.analytics, names.crash):
        s3.ensure_bucket(bucket)
    return names


def _worker(
    catalog: Catalog,
    store: S3Store,
    buckets: BucketNames,
    broker: MosquittoBroker,
    pki: TestPki,
    name: str,
) -> IngestWorker:
    return IngestWorker(
        catalog,
        store,
        cloud_broker_config(broker, pki),
        client_id=name,
        buckets=buckets,
        settings=WorkerSettings(
            threads=2, reconcile_interval_s=0, relay_interval_s=0.2
        ),
    )


def test_ingest_workers_split_events_and_relay_crashes(
    postgres_catalog: PostgresCatalog,
    s3: S3Store,
    buckets: BucketNames,
    broker: MosquittoBroker,
    pki: TestPki,
) -> None:
    logs = [
        upload_log(s3, buckets, start=T0, crash=index == 0, gateway_id=gateway)
        for index, gateway in enumerate(["gw-1", "gw-2"] * 5)
    ]
    workers = [
        _worker(postgres_catalog, s3, buckets, broker, pki, f"ingest-{index}")
        for index in range(2)
    ]
    with raw_client(broker, pki, "rnd-console", subscribe="cloud/events") as rnd:
        for worker in workers:
            worker.start()
        try:
            with (
                raw_client(broker, pki, "gw-1") as gw1,
                raw_client(broker, pki, "gw-2") as gw2,
            ):
                gateways = {"gw-1": gw1, "gw-2": gw2}
                for log in logs:
                    for event in log.events():
                        gateways[log.gateway_id].publish_json(
                            log.topic(), event.to_document()
                        )
                gw1.publish_json("gateways/gw-1/events", {"schema": "nonsense"})

            def events_done() -> bool:
                done = sum(worker.stats.events for worker in workers)
                return done == 11 and sum(w.stats.quarantined for w in workers) == 1

            wait_for("11 events catalogued and 1 quarantined", events_done)
            topic, document = rnd.next_message()
        finally:
            for worker in workers:
                worker.stop()

    # The broker shared the events between both workers.
    assert all(worker.stats.events > 0 for worker in workers)
    for log in logs:
        items = postgres_catalog.list_objects(ObjectFilter(log_id=log.log), limit=10)
        assert len(items.items) == (3 if log.crash else 2)
        assert {item.gateway_id for item in items.items} == {log.gateway_id}
    quarantined = postgres_catalog.list_quarantine(limit=10)
    assert [entry.source for entry in quarantined] == ["gateways/gw-1/events"]
    assert "schema" in quarantined[0].reason
    assert json.loads(quarantined[0].payload) == {"schema": "nonsense"}

    # R&D hears of the crash on cloud/events, after the commit.
    assert topic == "cloud/events"
    assert document["schema"] == "cloud-event/1"
    # analytics_ready of each log and one crash_detected are relayed; a
    # repeat (at least once) would carry the same id.
    seen = {document["id"]: document}
    wait_for("11 relayed notifications", lambda: _drain(rnd, seen) >= 11, 30)
    kinds = sorted(item["type"] for item in seen.values())
    assert kinds == ["analytics_ready"] * 10 + ["crash_detected"]
    crash = next(item for item in seen.values() if item["type"] == "crash_detected")
    assert crash["payload"]["log_id"] == logs[0].log
    pending = postgres_catalog.list_unpublished_notifications(
        [NotificationType.CRASH_DETECTED, NotificationType.ANALYTICS_READY], limit=10
    )
    assert pending == []


def _drain(client: RawClient, seen: dict[str, dict[str, Any]]) -> int:
    while True:
        try:
            _topic, payload = client.messages.get_nowait()
        except queue.Empty:
            return len(seen)
        document = json.loads(payload)
        seen[document["id"]] = document


def _config_file(
    path: Path,
    *,
    catalog_url: str,
    schema: str,
    seaweed: SeaweedS3,
    buckets: BucketNames,
    broker: MosquittoBroker,
    pki: TestPki,
) -> Path:
    config = cloud_broker_config(broker, pki)
    path.write_text(
        f"""
[catalog]
url = "{catalog_url}"
schema = "{schema}"

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
archive = "{buckets.archive}"

[broker]
host = "127.0.0.1"
port = {config.port}
ca_file = "{config.ca_file}"
cert_file = "{config.cert_file}"
key_file = "{config.key_file}"
tls_server_name = "{config.tls_server_name}"

[ingest]
threads = 2
reconcile_interval_s = 0
relay_interval_s = 0
"""
    )
    return path


def _start_worker(config: Path, log_path: Path) -> subprocess.Popen[bytes]:
    command = [
        sys.executable,
        "-m",
        "cloud_coordinator.cli",
        "--config",
        str(config),
        "ingest",
        "--client-id",
        "ingest-kill-test",
    ]
    with open(log_path, "ab") as log:
        return subprocess.Popen(
            command,
            cwd=PROJECT_ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def _analytics_count(catalog: Catalog) -> int:
    query = ObjectFilter(kind=ObjectKind.ANALYTICS)
    return len(catalog.list_objects(query, limit=1000).items)


def test_ingest_worker_killed_mid_batch_loses_and_duplicates_nothing(
    catalog_database: str,
    seaweed_s3: SeaweedS3,
    s3: S3Store,
    buckets: BucketNames,
    broker: MosquittoBroker,
    pki: TestPki,
    tmp_path: Path,
) -> None:
    schema = f"kill_{uuid.uuid4().hex[:10]}"
    catalog = PostgresCatalog(catalog_database, schema=schema)
    catalog.migrate()
    config = _config_file(
        tmp_path / "ingest.toml",
        catalog_url=catalog_database,
        schema=schema,
        seaweed=seaweed_s3,
        buckets=buckets,
        broker=broker,
        pki=pki,
    )
    logs = [
        upload_log(s3, buckets, start=T0, crash=index % 10 == 0, raw_bytes=100_000)
        for index in range(30)
    ]
    log_path = tmp_path / "worker.log"
    worker = _start_worker(config, log_path)
    try:
        # Events published before the first subscription reach nobody.
        wait_for(
            "the worker's subscription", lambda: "consuming" in log_path.read_text()
        )
        with raw_client(broker, pki, "gw-1") as gateway:
            for log in logs[:10]:
                for event in log.events():
                    gateway.publish_json(log.topic(), event.to_document())
            wait_for(
                "the first event catalogued", lambda: _analytics_count(catalog) > 0
            )
            for log in logs[10:]:
                for event in log.events():
                    gateway.publish_json(log.topic(), event.to_document())
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait(timeout=WAIT_S)
        at_kill = _analytics_count(catalog)
        assert at_kill < len(logs), "the worker finished before it was killed"

        worker = _start_worker(config, log_path)
        wait_for(
            "every log catalogued after the restart",
            lambda: _analytics_count(catalog) == len(logs),
        )
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=WAIT_S) == 0, log_path.read_text()[-3000:]
    finally:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait(timeout=WAIT_S)

    every = catalog.list_objects(ObjectFilter(), limit=1000).items
    crashes = sum(log.crash for log in logs)
    assert len(every) == 2 * len(logs) + crashes
    for log in logs:
        for ref in log.object_keys.values():
            bucket, _, key = ref.partition("/")
            stored = catalog.get_object_by_key(bucket, key)
            assert stored is not None and stored.gateway_id == "gw-1"
            assert stored.crash is log.crash
    notices = catalog.list_notifications(
        NotificationAudience("rnd"), after_seq=0, limit=1000
    )
    kinds = sorted(item.type.value for item in notices)
    assert kinds == ["analytics_ready"] * len(logs) + ["crash_detected"] * crashes
    assert catalog.list_quarantine(limit=10) == []
    catalog.close()


class _FlakyStore(LocalDirStore):
    """A local store whose HEADs of one key fail a few times, as if it were down."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.failing_key = ""
        self.failures = 0

    def head_object(self, bucket: str, key: str) -> Any:
        if key == self.failing_key and self.failures > 0:
            self.failures -= 1
            raise ObjectStoreUnavailable(f"head {bucket}/{key}: store restarting")
        return super().head_object(bucket, key)


def test_ingest_worker_retries_outages_and_reconciles_lost_events(
    sqlite_catalog: Catalog,
    broker: MosquittoBroker,
    pki: TestPki,
    tmp_path: Path,
) -> None:
    store = _FlakyStore(tmp_path / "store")
    names = BucketNames()
    for bucket in (names.raw, names.analytics, names.crash):
        store.ensure_bucket(bucket)
    lost = upload_log(store, names, start=T0, crash=True)  # its event never comes
    sent = upload_log(store, names, start=T0)
    worker = IngestWorker(
        sqlite_catalog,
        store,
        cloud_broker_config(broker, pki),
        client_id="ingest-flaky",
        buckets=names,
        settings=WorkerSettings(
            threads=1, reconcile_interval_s=0.5, relay_interval_s=0
        ),
    )
    worker.start()
    try:
        # Reconciliation catalogues both logs (neither event came yet) ...
        wait_for(
            "both logs reconciled",
            lambda: (
                sqlite_catalog.get_log_analytics(lost.log) is not None
                and sqlite_catalog.get_log_analytics(sent.log) is not None
            ),
        )
        # ... then one event arrives while the store fails its object.
        store.failing_key = sent.object_keys["analytics"].partition("/")[2]
        store.failures = 3
        with raw_client(broker, pki, "gw-1") as gateway:
            for event in sent.events():
                gateway.publish_json(sent.topic(), event.to_document())
        wait_for("the event catalogued", lambda: worker.stats.events == 1)
    finally:
        worker.stop()
    # The event waited out the outage, unacknowledged; nothing kept aside.
    assert store.failures == 0
    assert worker.stats.retries >= 1
    assert worker.stats.quarantined == 0
    raw = sqlite_catalog.list_objects(
        ObjectFilter(kind=ObjectKind.RAW, log_id=lost.log), limit=1
    ).items
    assert raw[0].crash is True and raw[0].gateway_id is None
    analytics = sqlite_catalog.get_log_analytics(sent.log)
    assert analytics is not None and analytics.gateway_id == "gw-1"
