"""The gateway refuses bad updates and keeps its model; works offline from cache."""

from __future__ import annotations

import datetime as dt
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
from modelrepo_env import BUCKET, MODEL, RepoWorld, UnreachableStore, make_world

from cloud_coordinator.modelrepo import (
    KeyRing,
    TufRepository,
    ValidationSet,
)
from cloud_coordinator.modelrepo.tufrepo import METADATA_PREFIX, target_object_key
from edge_agent.modelmgr import (
    ReferenceCrashes,
    UpdateResult,
    release_targets,
    write_reference_crashes,
)
from models.errors import ModelFileError
from models.registry import ModelInfo, shipped_model

SHIPPED = shipped_model().version


def _next(version: str, minor: int) -> str:
    major, base_minor, _ = (int(p) for p in version.split("."))
    return f"{major}.{base_minor + minor}.0"


V1, V2 = _next(SHIPPED, 1), _next(SHIPPED, 2)


def test_tuf_gateway_installs_a_published_model(world: RepoWorld) -> None:
    world.publish_version(V1)
    gateway = world.gateway("gw-1")

    outcome = gateway.check()

    assert outcome.result is UpdateResult.INSTALLED
    assert gateway.active_version == V1
    assert gateway.status_info()["model_version"] == V1
    assert (
        outcome.shadow["reference_detected"] == outcome.shadow["reference_crashes"] > 0
    )
    # A second check finds nothing new.
    assert gateway.check().result is UpdateResult.UP_TO_DATE


def test_tuf_gateway_refuses_tampered_model_file(
    world: RepoWorld, caplog: pytest.LogCaptureFixture
) -> None:
    world.publish_version(V1)
    release = release_targets(MODEL, V1)
    info = world.repo.targets()[release.model]
    key = target_object_key(release.model, info.hashes["sha256"])
    path = world.store.root / BUCKET / key
    tampered = bytearray(path.read_bytes())
    tampered[len(tampered) // 2] ^= 0xFF
    path.write_bytes(bytes(tampered))
    gateway = world.gateway("gw-1")

    with caplog.at_level(logging.ERROR, logger="edge_agent.modelmgr"):
        outcome = gateway.check()

    assert outcome.result is UpdateResult.REFUSED
    assert "LengthOrHashMismatchError" in (outcome.reason or "")
    assert gateway.active_version == SHIPPED
    line = next(r.getMessage() for r in caplog.records if "refused" in r.getMessage())
    assert "gateway gw-1" in line and release.model in line
    assert f"keeps running {MODEL} {SHIPPED}" in line


def test_tuf_gateway_refuses_replayed_older_metadata(
    world: RepoWorld, caplog: pytest.LogCaptureFixture
) -> None:
    world.publish_version(V1)
    metadata_dir = world.store.root / BUCKET / METADATA_PREFIX
    old_timestamp = (metadata_dir / "timestamp.json").read_bytes()
    world.publish_version(V2)
    gateway = world.gateway("gw-1")
    assert gateway.check().result is UpdateResult.INSTALLED
    assert gateway.active_version == V2

    # An attacker (or a stale mirror) serves the older, validly signed state.
    (metadata_dir / "timestamp.json").write_bytes(old_timestamp)
    with caplog.at_level(logging.ERROR, logger="edge_agent.modelmgr"):
        outcome = gateway.check()

    assert outcome.result is UpdateResult.REFUSED
    assert "BadVersionNumberError" in (outcome.reason or "")
    assert gateway.active_version == V2
    assert any(
        "refused by TUF verification" in r.getMessage()
        and f"keeps running {MODEL} {V2}" in r.getMessage()
        for r in caplog.records
    )


def test_tuf_gateway_refuses_expired_metadata(
    tmp_path: Path, validation: ValidationSet, caplog: pytest.LogCaptureFixture
) -> None:
    # The repository signed everything three days ago; the timestamp lasts
    # two days, so it is expired when the gateway reads it.
    past = dt.datetime.now(dt.UTC) - dt.timedelta(days=3)
    world = make_world(tmp_path, validation, clock=lambda: past)
    world.publish_version(V1)
    gateway = world.gateway("gw-1")

    with caplog.at_level(logging.ERROR, logger="edge_agent.modelmgr"):
        outcome = gateway.check()

    assert outcome.result is UpdateResult.REFUSED
    assert "ExpiredMetadataError" in (outcome.reason or "")
    assert gateway.active_version == SHIPPED
    assert any("timestamp.json is expired" in r.getMessage() for r in caplog.records)


def test_tuf_gateway_works_offline_from_cached_metadata(world: RepoWorld) -> None:
    world.publish_version(V1)
    assert world.gateway("gw-1").check().result is UpdateResult.INSTALLED

    # Restart without an uplink: the cached metadata still verifies.
    offline = world.gateway("gw-1", store=UnreachableStore(world.store.root))
    assert offline.active_version == V1
    outcome = offline.check()

    assert outcome.result is UpdateResult.UP_TO_DATE
    assert outcome.offline
    assert offline.active_version == V1


def test_tuf_gateway_offline_cache_expires(
    world: RepoWorld, validation: ValidationSet
) -> None:
    world.publish_version(V1)
    gateway_dir = world.root / "gateways" / "gw-1"
    assert world.gateway("gw-1").check().result is UpdateResult.INSTALLED

    # Later the cached timestamp has run out: a validly signed timestamp of
    # the same repository whose validity ended (signed with a past clock).
    past = dt.datetime.now(dt.UTC) - dt.timedelta(days=3)
    stale = TufRepository(
        world.store, BUCKET, KeyRing(world.root / "keys"), clock=lambda: past
    )
    stale.refresh(force=True)
    metadata_dir = world.store.root / BUCKET / METADATA_PREFIX
    shutil.copyfile(
        metadata_dir / "timestamp.json",
        gateway_dir / "tuf" / "metadata" / "timestamp.json",
    )
    offline = world.gateway("gw-1", store=UnreachableStore(world.store.root))

    outcome = offline.check()

    assert outcome.result is UpdateResult.REFUSED
    assert "ExpiredMetadataError" in (outcome.reason or "")
    assert offline.active_version == V1


def test_tuf_gateway_shadow_test_refuses_model_that_misses_reference_crashes(
    world: RepoWorld, validation: ValidationSet
) -> None:
    world.publish_version(V1)
    # Re-sign the release with "reference crashes" that are quiet riding:
    # the candidate cannot detect them, so the shadow test must refuse it.
    quiet_ride = validation.ride_slices()[1]
    windows = validation.windows[quiet_ride][:6]
    reference = ReferenceCrashes(
        np.ascontiguousarray(windows), np.zeros(len(windows), np.int32), ("none",)
    )
    release = release_targets(MODEL, V1)
    world.repo.change_targets({release.reference: write_reference_crashes(reference)})
    gateway = world.gateway("gw-1")

    outcome = gateway.check()

    assert outcome.result is UpdateResult.REFUSED
    assert "shadow test failed" in (outcome.reason or "")
    assert outcome.shadow["reference_detected"] == 0
    assert gateway.active_version == SHIPPED
    # Not tried again at the next check.
    assert gateway.check().result is UpdateResult.UP_TO_DATE
    assert gateway.active_version == SHIPPED


def test_tuf_gateway_restores_previous_model_when_new_one_does_not_load(
    world: RepoWorld,
) -> None:
    world.publish_version(V1)
    assert world.gateway("gw-1").check().result is UpdateResult.INSTALLED
    world.publish_version(V2)
    loaded: list[str] = []

    def load(info: ModelInfo) -> None:
        version = info.version
        if version == V2:
            raise ModelFileError(f"detector cannot open {version} (test)")
        loaded.append(version)

    gateway = world.gateway("gw-1", on_model=load)
    outcome = gateway.check()

    assert outcome.result is UpdateResult.RESTORED
    assert gateway.active_version == V1
    assert loaded == [V1]


def test_tuf_gateway_restores_previous_when_active_slot_is_broken(
    world: RepoWorld,
) -> None:
    world.publish_version(V1)
    world.gateway("gw-1").check()
    world.publish_version(V2)
    gateway = world.gateway("gw-1")
    assert gateway.check().result is UpdateResult.INSTALLED

    active = gateway.slots.active()
    assert active is not None
    active.model.write_bytes(b"not a model")

    # The gateway restarts (power cut, say) and finds the active model broken.
    restarted = world.gateway("gw-1")
    assert restarted.active_version == V1
    assert restarted.status_info()["model_update"]["result"] == "restored"
