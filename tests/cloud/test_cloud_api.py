"""Results API over HTTP (in-process ASGI) on SQLite and PostgreSQL catalogs."""

from __future__ import annotations

import json
from typing import Any

import pytest
from cloud_api_env import make_api_env
from cloud_helpers import T0, ManualClock
from cloud_world import DAY, World, build_world

from cloud_coordinator.catalog import Catalog
from edge_agent.upload import BodyChecksum, ChecksumMode, LocalDirStore


@pytest.fixture
def world(
    any_catalog: Catalog, local_store: LocalDirStore, clock: ManualClock
) -> World:
    return build_world(make_api_env(any_catalog, local_store, clock))


def _objects(
    world: World, subject: str, role: str, **params: Any
) -> list[dict[str, Any]]:
    """Return every listed object, following cursors."""
    items: list[dict[str, Any]] = []
    cursor = None
    for _ in range(100):
        query = {**params, **({"cursor": cursor} if cursor else {})}
        response = world.env.get("/api/v1/objects", subject, role, params=query)
        assert response.status_code == 200, response.text
        body = response.json()
        items += body["items"]
        cursor = body["next_cursor"]
        if cursor is None:
            return items
    raise AssertionError("more than 100 pages")


def _logs(items: list[dict[str, Any]]) -> set[str]:
    return {item["log_id"] for item in items}


def test_rider_lists_own_data_only(world: World) -> None:
    mine = _objects(world, "r1", "rider")
    assert {item["rider_id"] for item in mine} == {"r1"}
    # Two logs: raw + analytics each, and a crash copy of the crashed one.
    assert sorted(item["kind"] for item in mine) == [
        "analytics",
        "analytics",
        "crash",
        "raw",
        "raw",
    ]
    crashed = world.log("r1", 1).log
    assert _logs(_objects(world, "r1", "rider", kind="crash")) == {crashed}
    assert _logs(_objects(world, "r1", "rider", crash="true")) == {crashed}
    assert _logs(_objects(world, "r1", "rider", rider_id="r1", kind="raw")) == {
        world.log("r1", 0).log,
        crashed,
    }


def test_listing_fields_match_the_stored_objects(world: World) -> None:
    stored = world.log("r1", 0)
    raw = stored.objects["raw_csv"]
    (item,) = _objects(world, "r1", "rider", log_id=stored.log, kind="raw")
    assert item["object_id"] == raw.object_id
    assert item["key"] == raw.key and item["bucket"] == "raw"
    assert item["sha256"] == raw.sha256_hex
    assert item["size_bytes"] == len(stored.csv_gz)
    assert item["user_type"] == "private" and item["product"] == "lightweight"
    assert item["model_version"] == "1.0.0" and item["sample_count"] == 180_000
    assert item["log_start_utc"].startswith("2026-03-01T08:00:00")
    assert item["crash"] is False and item["downloadable"] is True
    assert item["retention_until_utc"] is not None


def test_technician_sees_assigned_professionals_only(world: World) -> None:
    assert {i["rider_id"] for i in _objects(world, "t1", "technician")} == {"p1"}
    assert {i["rider_id"] for i in _objects(world, "t2", "technician")} == {"p2"}
    for rider in ("p2", "q1", "r1", "nobody"):
        response = world.env.get(
            "/api/v1/objects", "t1", "technician", params={"rider_id": rider}
        )
        assert response.status_code == 404, rider
    assert _objects(world, "t1", "technician", rider_id="p1")


def test_rnd_and_admin_read_everything(world: World) -> None:
    for role in ("rnd", "admin"):
        riders = {item["rider_id"] for item in _objects(world, "x", role)}
        assert riders == {"r1", "r2", "p1", "p2", "q1"}
    pros = _objects(world, "x", "rnd", user_type="professional")
    assert {item["rider_id"] for item in pros} == {"p1", "p2"}
    assert _objects(world, "x", "rnd", rider_id="unknown") == []


def test_time_range_filter(world: World) -> None:
    params = {
        "from": (T0 + DAY).isoformat(),
        "to": (T0 + 3 * DAY).isoformat(),
    }
    found = _objects(world, "x", "rnd", **params)
    assert {item["rider_id"] for item in found} == {"r1", "r2"}
    naive = world.env.get(
        "/api/v1/objects", "x", "rnd", params={"from": "2026-03-01T00:00:00"}
    )
    assert naive.status_code == 400
    assert "time zone" in naive.json()["detail"]


def test_cursor_pagination_and_hard_limit(world: World) -> None:
    everything = _objects(world, "x", "rnd")
    paged = _objects(world, "x", "rnd", limit=2)
    assert [i["object_id"] for i in paged] == [i["object_id"] for i in everything]
    assert (
        len({i["object_id"] for i in paged}) == len(paged) == 14
    )  # 6 logs, 2 with crash copies
    sort_times = [i["sort_time_utc"] for i in paged]
    assert sort_times == sorted(sort_times, reverse=True)
    response = world.env.get("/api/v1/objects", "x", "rnd", params={"limit": 10**6})
    assert response.status_code == 200 and response.json()["limit"] == 50
    first = world.env.get("/api/v1/objects", "x", "rnd", params={"limit": 1}).json()
    other_query = world.env.get(
        "/api/v1/objects",
        "x",
        "rnd",
        params={"limit": 1, "kind": "raw", "cursor": first["next_cursor"]},
    )
    assert other_query.status_code == 400
    assert "different query" in other_query.json()["detail"]


def test_get_object_and_analytics(world: World) -> None:
    stored = world.log("p1")
    analytics = stored.objects["analytics"]
    one = world.env.get(f"/api/v1/objects/{analytics.object_id}", "t1", "technician")
    assert one.status_code == 200 and one.json()["kind"] == "analytics"
    response = world.env.get(f"/api/v1/logs/{stored.log}/analytics", "p1", "rider")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.headers["etag"] == f'"{analytics.sha256_hex}"'
    assert json.loads(response.content) == stored.analytics
    by_suit = world.env.get(
        f"/api/v1/logs/{stored.log}/analytics",
        "x",
        "rnd",
        params={"suit_id": stored.suit},
    )
    assert by_suit.status_code == 200
    wrong_suit = world.env.get(
        f"/api/v1/logs/{stored.log}/analytics",
        "x",
        "rnd",
        params={"suit_id": "SUIT-other"},
    )
    assert wrong_suit.status_code == 404


def test_analytics_not_matching_the_catalog_is_refused(world: World) -> None:
    stored = world.log("r2")
    analytics = stored.objects["analytics"]
    forged = json.dumps({**stored.analytics, "max_accel_g": 99.0}).encode()
    world.env.store.put_object(
        analytics.bucket,
        analytics.key,
        forged,
        metadata={},
        checksum=BodyChecksum.of(forged, ChecksumMode.MD5),
    )
    response = world.env.get(f"/api/v1/logs/{stored.log}/analytics", "r2", "rider")
    assert response.status_code == 502
    assert "do not match" in response.json()["detail"]
    world.env.store.delete_object(analytics.bucket, analytics.key)
    gone = world.env.get(f"/api/v1/logs/{stored.log}/analytics", "r2", "rider")
    assert gone.status_code == 404


def test_me(world: World) -> None:
    rider = world.env.get("/api/v1/me", "p1", "rider").json()
    assert rider["subject"] == "p1" and rider["role"] == "rider"
    assert rider["rider"]["technician_id"] == "t1"
    technician = world.env.get("/api/v1/me", "t1", "technician").json()
    assert technician["rider"] is None


def test_riders_in_scope(world: World) -> None:
    env = world.env

    def listed(subject: str, role: str) -> list[str]:
        body = env.get("/api/v1/riders", subject, role).json()
        return [rider["rider_id"] for rider in body["items"]]

    assert listed("r1", "rider") == ["r1"]
    assert listed("t1", "technician") == ["p1"]
    assert listed("x", "rnd") == ["p1", "p2", "q1", "r1", "r2"]
    assert env.get("/api/v1/riders/r1", "r1", "rider").json()["user_type"] == "private"
    assert env.get("/api/v1/riders/p1", "t1", "technician").status_code == 200
    page = env.get("/api/v1/riders", "x", "admin", params={"limit": 2}).json()
    assert len(page["items"]) == 2 and page["next_cursor"]


def test_admin_assigns_a_technician(world: World) -> None:
    env = world.env
    body = {"user_type": "professional", "product": "extended", "technician_id": "t1"}
    for role in ("rider", "technician", "rnd"):
        refused = env.client.put(
            "/api/v1/riders/q1", json=body, headers=env.headers("q1", role)
        )
        assert refused.status_code == 403, role
    assert {i["rider_id"] for i in _objects(world, "t1", "technician")} == {"p1"}
    done = env.client.put(
        "/api/v1/riders/q1", json=body, headers=env.headers("a", "admin")
    )
    assert done.status_code == 200 and done.json()["technician_id"] == "t1"
    assert {i["rider_id"] for i in _objects(world, "t1", "technician")} == {"p1", "q1"}
    bad = env.client.put(
        "/api/v1/riders/q1",
        json={"user_type": "alien"},
        headers=env.headers("a", "admin"),
    )
    assert bad.status_code == 422
    extra = env.client.put(
        "/api/v1/riders/q1",
        json={**body, "role": "admin"},
        headers=env.headers("a", "admin"),
    )
    assert extra.status_code == 422


def test_health_ready_and_openapi(world: World) -> None:
    client = world.env.client
    assert client.get("/health").json() == {"status": "ok"}
    assert client.get("/ready").status_code == 401
    ready = world.env.get("/ready", "x", "rnd")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"catalog": "ok", "store": "ok"}
    spec = client.get("/openapi.json").json()
    assert "/api/v1/objects" in spec["paths"]
    assert "/api/v1/logs/{log_id}/analytics" in spec["paths"]
    listing = spec["paths"]["/api/v1/objects"]["get"]
    assert {"bearer": []} in listing["security"]
    assert "security" not in spec["paths"]["/health"]["get"]


def test_catalog_down_is_503_and_not_ready(world: World) -> None:
    world.env.catalog.close()
    response = world.env.get("/api/v1/objects", "x", "rnd")
    assert response.status_code == 503
    assert response.headers["retry-after"]
    ready = world.env.get("/ready", "x", "rnd")
    assert ready.status_code == 503
    assert ready.json()["checks"]["catalog"].startswith("failed")
    assert world.env.client.get("/health").status_code == 200
