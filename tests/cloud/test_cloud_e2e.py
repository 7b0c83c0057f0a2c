"""End to end: gateway -> SeaweedFS + TLS Mosquitto -> ingest -> PostgreSQL ->
results API over HTTP and WebSocket -> retention.

An emulated gateway ``gw-1`` (its own client certificate, the shipped ACL)
uploads two logs of rider ``r1``, one with a crash, and publishes their
events. An in-process ingest worker catalogues them; the results API runs
on uvicorn on a loopback port. The rider's WebSocket receives "analytics
ready" and "crash detected", the R&D console gets the crash on
``cloud/events``, the rider lists and reads their data over HTTP. The
retention job, with a two-day window, first announces the deletion of the
plain log's raw data, then deletes it, keeps the crash log's, and the
catalog and audit show it.
"""

from __future__ import annotations

import datetime as dt
import json
import socket
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from cloud_api_env import make_api_env
from cloud_broker_env import cloud_broker_config, make_test_pki, raw_client, tls_broker
from cloud_gateway_emu import CRASH_EVENTS, unique_buckets, upload_log
from cloud_helpers import T0, ManualClock
from websockets.sync.client import ClientConnection, connect

from cloud_coordinator.catalog import (
    AuditAction,
    ObjectKind,
    PostgresCatalog,
    RetentionPolicy,
    Rider,
    UserType,
)
from cloud_coordinator.ingest import IngestWorker, WorkerSettings
from cloud_coordinator.retention import RetentionJob
from edge_agent.upload import S3Store
from tests.support.certs import TestPki
from tests.support.mosquitto import MosquittoBroker
from tests.support.seaweed import SeaweedS3

WAIT_S = 60.0
RAW_WINDOW = dt.timedelta(days=2)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> TestPki:
    return make_test_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def broker(tmp_path: Path, pki: TestPki) -> Iterator[MosquittoBroker]:
    with tls_broker(tmp_path / "broker", pki) as running:
        yield running


@pytest.fixture
def catalog(catalog_database: str, clock: ManualClock) -> Iterator[PostgresCatalog]:
    catalog = PostgresCatalog(
        catalog_database,
        schema=f"e2e_{uuid.uuid4().hex[:10]}",
        clock=clock,
        retention=RetentionPolicy(RAW_WINDOW),
    )
    catalog.migrate()
    yield catalog
    catalog.close()


@pytest.fixture
def s3(seaweed_s3: SeaweedS3) -> S3Store:
    return S3Store.connect(
        seaweed_s3.endpoint_url,
        access_key_id=seaweed_s3.access_key_id,
        secret_access_key=seaweed_s3.secret_access_key,
        region=seaweed_s3.region,
    )


class ApiServer:
    """The results API on uvicorn, on a loopback port, in a thread."""

    def __init__(self, app: Any) -> None:
        self._socket = socket.socket()
        self._socket.bind(("127.0.0.1", 0))
        self.port = self._socket.getsockname()[1]
        config = uvicorn.Config(app, log_level="warning", ws="websockets-sansio")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._socket]}, daemon=True
        )

    def __enter__(self) -> ApiServer:
        self._thread.start()
        deadline = threading.Event()
        for _ in range(int(WAIT_S / 0.05)):
            if self._server.started:
                return self
            deadline.wait(0.05)
        raise RuntimeError("uvicorn did not start")

    def __exit__(self, *exc: object) -> None:
        self._server.should_exit = True
        self._thread.join(WAIT_S)
        self._socket.close()


def _receive(ws: ClientConnection, count: int) -> dict[str, dict[str, Any]]:
    """Return ``count`` distinct notifications by id (repeats are dropped)."""
    seen: dict[str, dict[str, Any]] = {}
    while len(seen) < count:
        document = json.loads(ws.recv(timeout=WAIT_S))
        seen[document["id"]] = document
    return seen


def test_e2e_gateway_to_rider_and_retention(
    catalog: PostgresCatalog,
    s3: S3Store,
    broker: MosquittoBroker,
    pki: TestPki,
    clock: ManualClock,
) -> None:
    buckets = unique_buckets()
    for bucket in (buckets.raw, buckets.analytics, buckets.crash):
        s3.ensure_bucket(bucket)
    catalog.upsert_rider(Rider("r1", UserType.PRIVATE, "lightweight"))
    catalog.upsert_rider(Rider("r2", UserType.PRIVATE, "lightweight"))
    env = make_api_env(catalog, s3, clock, buckets=buckets)
    rider = {"Authorization": f"Bearer {env.token('r1', 'rider')}"}
    worker = IngestWorker(
        catalog,
        s3,
        cloud_broker_config(broker, pki),
        client_id="ingest-e2e",
        buckets=buckets,
        clock=clock,
        settings=WorkerSettings(
            threads=2, reconcile_interval_s=0, relay_interval_s=0.2
        ),
    )

    with (
        ApiServer(env.app) as api,
        httpx.Client(
            base_url=f"http://127.0.0.1:{api.port}", trust_env=False, timeout=WAIT_S
        ) as http,
        connect(
            f"ws://127.0.0.1:{api.port}/api/v1/notifications/ws",
            additional_headers=rider,
            proxy=None,
        ) as ws,
        raw_client(broker, pki, "rnd-console", subscribe="cloud/events") as rnd,
    ):
        worker.start()
        try:
            # The gateway uploads, then announces each log on its events topic.
            with raw_client(broker, pki, "gw-1") as gateway:
                plain = upload_log(s3, buckets, start=T0, crash=False)
                crashed = upload_log(
                    s3, buckets, start=T0 + dt.timedelta(hours=2), crash=True
                )
                for log in (plain, crashed):
                    for event in log.events():
                        gateway.publish_json(log.topic(), event.to_document())

            # Notified only after the commit, once each.
            notices = _receive(ws, 3)
            kinds = sorted(
                (item["type"], item["payload"]["log_id"]) for item in notices.values()
            )
            assert kinds == sorted(
                [
                    ("analytics_ready", plain.log),
                    ("analytics_ready", crashed.log),
                    ("crash_detected", crashed.log),
                ]
            )
            crash_notice = next(
                item for item in notices.values() if item["type"] == "crash_detected"
            )
            assert crash_notice["payload"]["events"] == CRASH_EVENTS
            topic, relayed = rnd.next_message()
            while relayed["type"] != "crash_detected":
                topic, relayed = rnd.next_message()
            assert topic == "cloud/events"
            assert relayed["id"] == crash_notice["id"]
        finally:
            worker.stop()

        # The rider lists and reads their data over HTTP.
        listing = http.get("/api/v1/objects", params={"kind": "raw"}, headers=rider)
        assert listing.status_code == 200, listing.text
        raw = {item["log_id"]: item for item in listing.json()["items"]}
        assert set(raw) == {plain.log, crashed.log}
        assert raw[plain.log]["crash"] is False
        assert raw[crashed.log]["crash"] is True
        assert raw[crashed.log]["retention_until_utc"] is None
        analytics = http.get(f"/api/v1/logs/{crashed.log}/analytics", headers=rider)
        assert analytics.status_code == 200, analytics.text
        assert analytics.json() == json.loads(crashed.bodies["analytics"])
        other = {"Authorization": f"Bearer {env.token('r2', 'rider')}"}
        assert (
            http.get(f"/api/v1/logs/{crashed.log}/analytics", headers=other).status_code
            == 404
        )

        # Retention: the rider is told before the window closes ...
        job = RetentionJob(catalog, s3, notice_days=3, clock=clock)
        first = job.run(now=T0 + dt.timedelta(days=1))
        assert [item.log_id for item in first.notified] == [plain.log]
        assert first.deleted == []
        (deletion,) = _receive(ws, 1).values()
        assert deletion["type"] == "raw_deletion_scheduled"
        assert deletion["payload"]["log_id"] == plain.log

        # ... which keeps the window open for the full notice period (to
        # day 1 + 3); after it closed, the plain raw object goes, the crash
        # one stays.
        notice_end = T0 + dt.timedelta(days=1 + 3)
        assert job.run(now=T0 + RAW_WINDOW + dt.timedelta(hours=1)).deleted == []
        second = job.run(now=notice_end)
        assert [item.log_id for item in second.deleted] == [plain.log]
        plain_raw = plain.object_keys["raw_csv"].partition("/")[2]
        crash_raw = crashed.object_keys["raw_csv"].partition("/")[2]
        assert s3.head_object(buckets.raw, plain_raw) is None
        assert s3.head_object(buckets.raw, crash_raw) is not None
        assert catalog.get_object_by_key(buckets.raw, plain_raw) is None
        assert catalog.get_object_by_key(buckets.raw, crash_raw) is not None
        listing = http.get("/api/v1/objects", headers=rider).json()["items"]
        assert sorted((item["kind"], item["log_id"]) for item in listing) == sorted(
            [
                (ObjectKind.ANALYTICS.value, plain.log),
                (ObjectKind.ANALYTICS.value, crashed.log),
                (ObjectKind.RAW.value, crashed.log),
                (ObjectKind.CRASH.value, crashed.log),
            ]
        )
        audit = catalog.list_audit(rider_id="r1", limit=50).items
        deletions = [
            entry for entry in audit if entry.action is AuditAction.RETENTION_DELETE
        ]
        assert [(entry.bucket, entry.key) for entry in deletions] == [
            (buckets.raw, plain_raw)
        ]
        assert job.run(now=notice_end + dt.timedelta(hours=1)).deleted == []
