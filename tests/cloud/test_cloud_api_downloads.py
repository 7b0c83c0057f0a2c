"""Download links and analytics retrieval on a local store and on SeaweedFS."""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from cloud_api_env import make_api_env
from cloud_helpers import ManualClock, store_log
from cloud_world import RIDERS, World, build_world

from cloud_coordinator.api import S3Presigner
from cloud_coordinator.catalog import SqliteCatalog
from edge_agent.upload import BucketNames, LocalDirStore, S3Store
from tests.support.seaweed import SeaweedS3

# Generous bound on one HTTP round trip to the loopback SeaweedFS.
HTTP_TIMEOUT_S = 30.0


@pytest.fixture
def world(
    sqlite_catalog: SqliteCatalog, local_store: LocalDirStore, clock: ManualClock
) -> World:
    return build_world(make_api_env(sqlite_catalog, local_store, clock))


def _link(world: World, object_id: int, subject: str, role: str) -> httpx.Response:
    return world.env.get(f"/api/v1/objects/{object_id}/download", subject, role)


def test_local_link_downloads_the_bytes(world: World) -> None:
    stored = world.log("r1")
    raw = stored.objects["raw_csv"]
    link = _link(world, raw.object_id, "r1", "rider")
    assert link.status_code == 200
    body = link.json()
    assert body["sha256"] == raw.sha256_hex and body["method"] == "GET"
    assert body["url"].startswith("http://testserver/api/v1/blobs/raw/")
    expires = dt.datetime.fromisoformat(body["expires_utc"])
    assert dt.timedelta(0) < expires - world.env.clock() <= dt.timedelta(seconds=300)
    # The link needs no bearer token.
    download = world.env.client.get(body["url"])
    assert download.status_code == 200
    assert download.content == stored.csv_gz
    assert hashlib.sha256(download.content).hexdigest() == raw.sha256_hex
    ranged = world.env.client.get(body["url"], headers={"Range": "bytes=0-3"})
    assert ranged.status_code == 206 and ranged.content == stored.csv_gz[:4]


def test_local_link_expires_and_cannot_be_altered(world: World) -> None:
    raw = world.log("r1").objects["raw_csv"]
    other = world.log("r2").objects["raw_csv"]
    url = _link(world, raw.object_id, "r1", "rider").json()["url"]
    parts = urlsplit(url)
    query = {name: values[0] for name, values in parse_qs(parts.query).items()}
    client = world.env.client
    # Another object's key with this link's signature.
    assert client.get(f"/api/v1/blobs/raw/{other.key}", params=query).status_code == 403
    later = {**query, "expires": str(int(query["expires"]) + 3600)}
    assert client.get(parts.path, params=later).status_code == 403
    flipped = query["signature"][:-1] + ("0" if query["signature"][-1] != "0" else "1")
    assert (
        client.get(parts.path, params={**query, "signature": flipped}).status_code
        == 403
    )
    assert client.get(parts.path, params=query).status_code == 200
    world.env.clock.advance(seconds=301)
    assert client.get(parts.path, params=query).status_code == 403


def test_download_only_while_the_retention_window_is_open(world: World) -> None:
    raw = world.log("r1", 0).objects["raw_csv"]
    crash_raw = world.log("r1", 1).objects["raw_csv"]
    crash_copy = world.log("r1", 1).objects["crash_raw_csv"]
    professional = world.log("p1").objects["raw_csv"]
    assert raw.retention_until is not None
    assert crash_raw.retention_until is None
    assert professional.retention_until is None
    world.env.clock.advance(days=13, hours=23)
    assert _link(world, raw.object_id, "r1", "rider").status_code == 200
    world.env.clock.advance(hours=2)
    closed = _link(world, raw.object_id, "r1", "rider")
    assert closed.status_code == 410
    assert "closed" in closed.json()["detail"]
    listed = world.env.get(f"/api/v1/objects/{raw.object_id}", "r1", "rider").json()
    assert listed["downloadable"] is False
    assert _link(world, crash_raw.object_id, "r1", "rider").status_code == 200
    assert _link(world, crash_copy.object_id, "r1", "rider").status_code == 200
    assert _link(world, professional.object_id, "t1", "technician").status_code == 200


def test_seaweedfs_presigned_download_and_analytics(
    seaweed_s3: SeaweedS3, sqlite_catalog: SqliteCatalog, clock: ManualClock
) -> None:
    suffix = uuid.uuid4().hex[:8]
    buckets = BucketNames(
        raw=f"raw-{suffix}", analytics=f"analytics-{suffix}", crash=f"crash-{suffix}"
    )
    store = S3Store.connect(
        seaweed_s3.endpoint_url,
        access_key_id=seaweed_s3.access_key_id,
        secret_access_key=seaweed_s3.secret_access_key,
        region=seaweed_s3.region,
    )
    env = make_api_env(
        sqlite_catalog,
        store,
        clock,
        buckets=buckets,
        presigner=S3Presigner.connect(
            seaweed_s3.endpoint_url,
            access_key_id=seaweed_s3.access_key_id,
            secret_access_key=seaweed_s3.secret_access_key,
            region=seaweed_s3.region,
        ),
    )
    rider = sqlite_catalog.upsert_rider(RIDERS["r1"])
    stored = store_log(
        store, sqlite_catalog, buckets, rider=rider, suit="SUIT-7", start=clock()
    )
    raw = stored.objects["raw_csv"]
    assert raw.bucket == buckets.raw

    link = env.get(f"/api/v1/objects/{raw.object_id}/download", "r1", "rider")
    assert link.status_code == 200
    url = link.json()["url"]
    assert url.startswith(seaweed_s3.endpoint_url) and "X-Amz-Signature" in url
    download = httpx.get(url, timeout=HTTP_TIMEOUT_S)
    assert download.status_code == 200
    assert download.content == stored.csv_gz
    tampered = url.replace(
        raw.key, stored.objects["analytics"].key.replace(".json", "")
    )
    assert httpx.get(tampered, timeout=HTTP_TIMEOUT_S).status_code == 403
    assert httpx.get(url.split("?")[0], timeout=HTTP_TIMEOUT_S).status_code == 403

    analytics = env.get(f"/api/v1/logs/{stored.log}/analytics", "r1", "rider")
    assert analytics.status_code == 200
    assert analytics.json() == stored.analytics
    assert env.get("/ready", "x", "rnd").json()["checks"]["store"] == "ok"
    assert (
        env.get(f"/api/v1/logs/{stored.log}/analytics", "r2", "rider").status_code
        == 404
    )


def test_signed_link_to_a_missing_object_is_404(world: World) -> None:
    services = world.env.app.state.services
    for bucket, key in (("gone-bucket", "r1/x.csv.gz"), ("raw", "r1/none.csv.gz")):
        link = services.presigner.presign(
            bucket, key, ttl_s=60, now=world.env.clock(), base_url="http://testserver"
        )
        assert world.env.client.get(link.url).status_code == 404
