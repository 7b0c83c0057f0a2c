"""Rider export and erasure over the API, on SQLite and PostgreSQL."""

from __future__ import annotations

import io
import json
import tarfile

import pytest
from cloud_api_env import ApiEnv, make_api_env
from cloud_helpers import ManualClock, sha
from cloud_world import World, build_world

from cloud_coordinator.catalog import (
    AuditAction,
    Catalog,
    ObjectFilter,
    iter_pages,
)
from edge_agent.upload import BodyChecksum, ChecksumMode, LocalDirStore

ARCHIVE_KEY = "r1/SUIT-r1/up-1/old ride.csv"
ARCHIVE_BYTES = b"Time,Ax,Ay,Az\n0,0,0,1\n"


@pytest.fixture
def world(
    any_catalog: Catalog, local_store: LocalDirStore, clock: ManualClock
) -> World:
    env = make_api_env(any_catalog, local_store, clock)
    built = build_world(env)
    local_store.ensure_bucket("archive")
    local_store.put_object(
        "archive",
        ARCHIVE_KEY,
        ARCHIVE_BYTES,
        metadata={},
        checksum=BodyChecksum.of(ARCHIVE_BYTES, ChecksumMode.MD5),
    )
    return built


def _members(data: bytes) -> dict[str, bytes]:
    """Return the tar's members in order, by name."""
    with tarfile.open(fileobj=io.BytesIO(data)) as archive:
        return {
            member.name: archive.extractfile(member).read()  # type: ignore[union-attr]
            for member in archive.getmembers()
        }


def _stored(env: ApiEnv) -> dict[tuple[str, str], str]:
    found = {}
    for bucket in ("raw", "analytics", "crash", "archive"):
        for item in env.store.list_objects(bucket):
            found[(bucket, item.key)] = sha(env.store.get_object(bucket, item.key))
    return found


def _rows(env: ApiEnv) -> set[tuple[str, str]]:
    rows = iter_pages(
        lambda cursor: env.catalog.list_objects(
            ObjectFilter(), limit=50, cursor=cursor
        ),
        max_pages=100,
    )
    return {(row.bucket, row.key) for row in rows}


def test_export_holds_every_object_and_row_of_the_rider(world: World) -> None:
    env = world.env
    response = env.get("/api/v1/riders/r1/export", "r1", "rider")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/x-tar"
    members = _members(response.content)
    names = list(members)
    assert names[0] == "manifest.json"
    manifest = json.loads(members["manifest.json"])
    assert manifest["schema"] == "rider-export/1"
    assert manifest["rider"]["rider_id"] == "r1"

    expected = {
        (bucket, key): digest
        for (bucket, key), digest in _stored(env).items()
        if key.startswith("r1/")
    }
    assert len(expected) == 6  # two rides (one with a crash copy) + archive
    exported = {}
    for name in names[1:]:
        _, bucket, key = name.split("/", 2)
        exported[(bucket, key)] = sha(members[name])
    assert exported == expected
    catalogued = {
        (o.bucket, o.key) for log in world.logs["r1"] for o in log.objects.values()
    }
    assert {(o["bucket"], o["key"]) for o in manifest["objects"]} == catalogued
    assert [f["key"] for f in manifest["uncatalogued_files"]] == [ARCHIVE_KEY]

    actions = [e.action for e in env.catalog.list_audit(rider_id="r1", limit=9).items]
    assert actions == [AuditAction.EXPORT]


@pytest.mark.parametrize(
    ("subject", "role", "status"),
    [
        ("r2", "rider", 404),
        ("t1", "technician", 404),  # r1 is not theirs
        ("rnd-1", "rnd", 403),
        ("admin-1", "admin", 200),
    ],
)
def test_export_access(world: World, subject: str, role: str, status: int) -> None:
    response = world.env.get("/api/v1/riders/r1/export", subject, role)
    assert response.status_code == status


def test_technician_may_not_export_or_erase_own_professional(world: World) -> None:
    env = world.env
    assert env.get("/api/v1/riders/p1/export", "t1", "technician").status_code == 403
    response = env.client.delete(
        "/api/v1/riders/p1/data", headers=env.headers("t1", "technician")
    )
    assert response.status_code == 403
    assert env.client.delete("/api/v1/riders/p1/data").status_code == 401


def test_erasure_removes_the_rider_and_nothing_else(world: World) -> None:
    env = world.env
    before_store, before_rows = _stored(env), _rows(env)
    other_store = {k: v for k, v in before_store.items() if not k[1].startswith("r1/")}
    other_rows = {row for row in before_rows if not row[1].startswith("r1/")}

    # Another rider cannot erase r1's data, and learns nothing.
    wrong = env.client.delete(
        "/api/v1/riders/r1/data", headers=env.headers("r2", "rider")
    )
    assert wrong.status_code == 404
    assert _stored(env) == before_store

    response = env.client.delete(
        "/api/v1/riders/r1/data", headers=env.headers("r1", "rider")
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["catalogued_objects"] == 5 and body["uncatalogued_objects"] == 1
    assert body["records"]["riders"] == 1

    assert _stored(env) == other_store
    assert _rows(env) == other_rows
    assert env.catalog.get_rider("r1") is None
    assert env.catalog.get_rider("r2") is not None
    audit = env.catalog.list_audit(rider_id="r1", limit=50).items
    erased = [e for e in audit if e.action is AuditAction.ERASURE]
    assert len(erased) == 6
    assert {e.key for e in erased} >= {ARCHIVE_KEY}
    assert audit[-1].action is AuditAction.RIDER_ERASED

    # The export after erasure is empty but for the audit.
    again = env.get("/api/v1/riders/r1/export", "r1", "rider")
    members = _members(again.content)
    assert list(members) == ["manifest.json"]
    manifest = json.loads(members["manifest.json"])
    assert manifest["objects"] == [] and manifest["rider"] is None
    assert len(manifest["audit"]) == len(audit)


def test_audit_route_scopes(world: World) -> None:
    env = world.env
    response = env.client.delete(
        "/api/v1/riders/r1/data", headers=env.headers("admin-1", "admin")
    )
    assert response.status_code == 200
    own = env.get("/api/v1/audit", "r1", "rider", params={"limit": 4})
    assert own.status_code == 200
    page = own.json()
    assert len(page["items"]) == 4 and page["next_cursor"]
    assert {item["rider_id"] for item in page["items"]} == {"r1"}
    assert page["items"][0]["actor"] == "admin:admin-1"
    rest = env.get(
        "/api/v1/audit",
        "r1",
        "rider",
        params={"limit": 4, "cursor": page["next_cursor"]},
    ).json()
    assert len(page["items"]) + len(rest["items"]) == 7  # 6 objects + the rider
    assert (
        env.get("/api/v1/audit", "r2", "rider", params={"rider_id": "r1"}).status_code
        == 404
    )
    assert env.get("/api/v1/audit", "r2", "rider").json()["items"] == []
    assert env.get("/api/v1/audit", "t1", "technician").status_code == 422
    assert (
        env.get(
            "/api/v1/audit", "t1", "technician", params={"rider_id": "p1"}
        ).status_code
        == 200
    )
    assert (
        env.get(
            "/api/v1/audit", "t1", "technician", params={"rider_id": "r1"}
        ).status_code
        == 404
    )
    assert len(env.get("/api/v1/audit", "rnd-1", "rnd").json()["items"]) == 7
