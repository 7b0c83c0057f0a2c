"""Analytics jobs: the gateway pipeline on archived files, polled over the API."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from cloud_api_env import ApiEnv, make_api_env
from cloud_helpers import ManualClock

from cloud_coordinator.api.lifecycle import LifecycleServices
from cloud_coordinator.catalog import (
    Catalog,
    JobState,
    ObjectFilter,
    ObjectKind,
    Rider,
    UserType,
)
from cloud_coordinator.jobs import JobRunner
from cloud_coordinator.notify import NotificationAudience, NotificationType
from edge_agent.ingest import ingest_file
from edge_agent.processing import CrashDetector, ProcessOptions
from edge_agent.upload import BodyChecksum, ChecksumMode, LocalDirStore
from firmware_bridge.synth.api import ride_log_path, write_ride
from firmware_bridge.synth.spec import RideSpec

UPLOAD = "r1/SUIT-A/up-1"


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A suit log with a crash, a CSV export without units, a broken file."""
    folder = tmp_path_factory.mktemp("archive")
    spec = RideSpec(
        seed=5,
        scenario="city",
        riding_s=40,
        sample_rate_hz=200,
        walk_before_s=3,
        walk_after_s=3,
        crash="highside",
        crash_at_s=25,
        suit_serial="SUIT-A",
    )
    log = ride_log_path(spec, folder)
    write_ride(spec, log)
    rng = np.random.default_rng(1)
    rows = ["time,ax,ay,az,gx,gy,gz"]
    for index in range(3000):  # 30 s at 100 Hz, in ms, g and deg/s
        ax, ay, gx, gy, gz = rng.normal(0, 0.05, 5)
        rows.append(f"{index * 10},{ax:.4f},{ay:.4f},1.0,{gx:.3f},{gy:.3f},{gz:.3f}")
    export = folder / "export.csv"
    export.write_text("\n".join(rows) + "\n")
    broken = folder / "broken.slog"
    broken.write_bytes(b"\0garbage" * 100)
    return {"log": log, "csv": export, "broken": broken}


@pytest.fixture
def env(
    sqlite_catalog: Catalog,
    local_store: LocalDirStore,
    clock: ManualClock,
    files: dict[str, Path],
    tmp_path: Path,
) -> Iterator[ApiEnv]:
    made = make_api_env(sqlite_catalog, local_store, clock)
    sqlite_catalog.upsert_rider(Rider("r1", UserType.PRIVATE))
    local_store.ensure_bucket("archive")
    for path in files.values():
        data = path.read_bytes()
        local_store.put_object(
            "archive",
            f"{UPLOAD}/{path.name}",
            data,
            metadata={},
            checksum=BodyChecksum.of(data, ChecksumMode.MD5),
        )
    runner = JobRunner(
        sqlite_catalog, local_store, made.buckets, scratch_dir=tmp_path / "jobs"
    )
    services = made.app.state.services
    made.app.state.services = dataclasses.replace(
        services, lifecycle=LifecycleServices(jobs=runner)
    )
    made.runner = runner  # type: ignore[attr-defined]
    yield made
    runner.close()


def _run(env: ApiEnv, subject: str, body: dict[str, object]) -> dict[str, object]:
    response = env.client.post(
        "/api/v1/jobs", json=body, headers=env.headers(subject, "rider")
    )
    assert response.status_code == 202, response.text
    job = response.json()
    assert job["state"] == "queued" and response.headers["location"] == job["href"]
    env.runner.wait(job["job_id"], timeout_s=120)  # type: ignore[attr-defined]
    polled = env.get(job["href"], subject, "rider")
    assert polled.status_code == 200
    result: dict[str, object] = polled.json()
    return result


def test_archived_suit_log_gets_the_gateways_analytics(
    env: ApiEnv, files: dict[str, Path], tmp_path: Path
) -> None:
    job = _run(env, "r1", {"archive_key": f"{UPLOAD}/{files['log'].name}"})
    assert job["state"] == JobState.SUCCEEDED, job["error"]
    result = job["result"]
    assert isinstance(result, dict)
    assert set(result["objects"]) == {"analytics", "raw_csv", "crash_raw_csv"}
    assert result["crash_detected"] is True
    log_id = job["log_id"]

    # The same code as the gateway: a local run gives the same analytics.
    local = ingest_file(
        files["log"],
        "r1",
        "SUIT-A",
        tmp_path / "local",
        CrashDetector.shipped(),
        options=ProcessOptions(fsync=False),
    )
    served = env.get(f"/api/v1/logs/{log_id}/analytics", "r1", "rider")
    assert served.status_code == 200
    document = served.json()
    assert document["log_id"] == local.log_id == log_id
    for name in ("samples", "max_accel_g", "duration_s", "crash", "quality"):
        assert document[name] == local.analytics[name], name

    rows = env.catalog.list_objects(ObjectFilter(rider_id="r1"), limit=10).items
    assert {(row.kind, row.crash) for row in rows} == {
        (ObjectKind.RAW, True),
        (ObjectKind.ANALYTICS, True),
        (ObjectKind.CRASH, True),
    }
    audience = NotificationAudience(role="rider", rider_id="r1")
    notes = env.catalog.list_notifications(audience, after_seq=0, limit=10)
    assert {n.type for n in notes} == {
        NotificationType.ANALYTICS_READY,
        NotificationType.CRASH_DETECTED,
    }

    # Again: same objects, nothing announced twice.
    again = _run(env, "r1", {"archive_key": f"{UPLOAD}/{files['log'].name}"})
    assert again["state"] == JobState.SUCCEEDED
    assert again["result"]["objects"] == result["objects"]  # type: ignore[index]
    assert len(env.catalog.list_notifications(audience, after_seq=0, limit=10)) == 2


def test_csv_export_needs_its_units_and_raw_source_gets_analytics(
    env: ApiEnv, files: dict[str, Path]
) -> None:
    key = f"{UPLOAD}/{files['csv'].name}"
    missing = _run(env, "r1", {"archive_key": key})
    assert missing["state"] == JobState.FAILED
    assert "export.csv" in str(missing["error"]) and "unit" in str(missing["error"])

    units = {"time_unit": "ms", "accel_unit": "g", "gyro_unit": "deg/s"}
    done = _run(env, "r1", {"archive_key": key, **units})
    assert done["state"] == JobState.SUCCEEDED, done["error"]
    raw_id = done["result"]["objects"]["raw_csv"]["object_id"]  # type: ignore[index]
    analytics_key = done["result"]["objects"]["analytics"]["key"]  # type: ignore[index]

    # The processed raw CSV declares its units: a job on it needs none.
    env.store.delete_object("analytics", analytics_key)
    exists = env.client.post(
        "/api/v1/jobs", json={"object_id": raw_id}, headers=env.headers("r1", "rider")
    )
    assert exists.status_code == 409  # the catalog still lists its analytics
    from_raw = _run(env, "r1", {"object_id": raw_id, "recompute": True})
    assert from_raw["state"] == JobState.SUCCEEDED, from_raw["error"]
    assert set(from_raw["result"]["objects"]) == {"analytics"}  # type: ignore[index]
    assert from_raw["log_id"] == done["log_id"]
    stored = json.loads(env.store.get_object("analytics", analytics_key))
    assert stored["log_id"] == done["log_id"]


def test_bad_file_fails_with_a_clear_message(
    env: ApiEnv, files: dict[str, Path]
) -> None:
    job = _run(env, "r1", {"archive_key": f"{UPLOAD}/{files['broken'].name}"})
    assert job["state"] == JobState.FAILED
    assert "broken.slog" in str(job["error"])
    assert env.catalog.list_objects(ObjectFilter(rider_id="r1"), limit=5).items == []


def test_jobs_respect_scope(env: ApiEnv, files: dict[str, Path]) -> None:
    key = f"{UPLOAD}/{files['log'].name}"
    other = env.client.post(
        "/api/v1/jobs", json={"archive_key": key}, headers=env.headers("r2", "rider")
    )
    assert other.status_code == 404
    for body in ({}, {"archive_key": key, "object_id": 1}, {"archive_key": "a/b"}):
        response = env.client.post(
            "/api/v1/jobs", json=body, headers=env.headers("r1", "rider")
        )
        assert response.status_code == 422, body
    missing = env.client.post(
        "/api/v1/jobs",
        json={"archive_key": f"{UPLOAD}/nothing.csv"},
        headers=env.headers("r1", "rider"),
    )
    assert missing.status_code == 404
    job = _run(env, "r1", {"archive_key": key})
    href = str(job["href"])
    assert env.get(href, "r2", "rider").status_code == 404
    assert env.get(href, "rnd-1", "rnd").status_code == 200
    assert env.get("/api/v1/jobs/" + "0" * 32, "r1", "rider").status_code == 404


def test_no_runner_is_503(
    sqlite_catalog: Catalog, local_store: LocalDirStore, clock: ManualClock
) -> None:
    env = make_api_env(sqlite_catalog, local_store, clock)
    response = env.client.post(
        "/api/v1/jobs", json={"object_id": 1}, headers=env.headers("r1", "rider")
    )
    assert response.status_code == 503
