"""Publishing: rebuild from head weights, the gate, versions, re-signing, CLI."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from pathlib import Path

import numpy as np
import pytest
from modelrepo_env import MODEL, RepoWorld, make_world, model_files

from cloud_coordinator.catalog import SqliteCatalog
from cloud_coordinator.cli import main as coordinator_main
from cloud_coordinator.modelrepo import (
    ModelRepoError,
    PublishRefused,
    RolloutError,
    RolloutSettings,
    TufRepository,
    ValidationSet,
)
from edge_agent.modelmgr import (
    Stage,
    UpdateResult,
    release_targets,
    rollout_target_path,
)
from models.head import load_head
from models.metadata import ModelMetadata, load_metadata, save_metadata
from models.registry import shipped_model, shipped_path

SHIPPED = shipped_model().version


def _next(version: str, minor: int = 1) -> str:
    major, base_minor, _ = (int(p) for p in version.split("."))
    return f"{major}.{base_minor + minor}.0"


def _metadata(world: RepoWorld, version: str) -> ModelMetadata:
    path = release_targets(MODEL, version).metadata
    return ModelMetadata.from_dict(json.loads(world.repo.target_bytes(path)), path)


def test_tuf_publish_from_head_rebuilds_gates_and_publishes(world: RepoWorld) -> None:
    head = load_head(shipped_path(".json"))

    outcome = world.publisher.publish_from_head(head.kernel, head.bias, run_id="run-7")

    version = _next(SHIPPED)
    assert outcome.published and outcome.version == version
    assert outcome.gate.passed and not outcome.approved
    release = release_targets(MODEL, version)
    targets = world.repo.targets()
    assert set(release.paths()) | {rollout_target_path(MODEL)} <= set(targets)
    metadata = _metadata(world, version)
    assert metadata.head is not None
    assert np.allclose(metadata.head["kernel"], head.kernel)
    assert metadata.training["publication"]["run_id"] == "run-7"
    assert metadata.evaluation["gate"]["passed"] is True
    gateway = world.gateway("gw-1")
    assert gateway.check().result is UpdateResult.INSTALLED
    assert gateway.active_version == version


def test_tuf_publish_gate_refuses_worse_model_unless_approved(
    world: RepoWorld,
) -> None:
    head = load_head(shipped_path(".json"))
    before = world.repo.status().versions["targets"]

    # The bias pushed up: every crash still found, but riding alarms too.
    alarmist = (head.kernel, head.bias + 20.0)
    refused = world.publisher.publish_from_head(*alarmist)

    assert not refused.published
    assert not refused.gate.passed
    assert any("false alarms" in r for r in refused.gate.reasons)
    assert world.repo.status().versions["targets"] == before

    approved = world.publisher.publish_from_head(*alarmist, approve=True)
    assert approved.published and approved.approved
    assert _metadata(world, approved.version).evaluation["approved_by_rnd"] is True


def test_tuf_publish_refuses_a_model_that_finds_no_crash_even_approved(
    world: RepoWorld,
) -> None:
    head = load_head(shipped_path(".json"))
    before = world.repo.status().versions["targets"]

    # A head pushed far below the threshold: every window, crashes included,
    # scores about sigmoid(-30). With no crash detected there are no reference
    # crashes for the gateways' shadow test.
    with pytest.raises(ModelRepoError, match="detects no validation crash"):
        world.publisher.publish_from_head(head.kernel * 0.0, -30.0, approve=True)
    assert world.repo.status().versions["targets"] == before


def test_tuf_publish_refuses_version_not_above_published(world: RepoWorld) -> None:
    world.publish_version(_next(SHIPPED, 2))
    model_path, metadata_path = model_files(world.root / "old", _next(SHIPPED, 1))

    with pytest.raises(
        PublishRefused, match="not above the newest published or shipped"
    ):
        world.publisher.publish_model(model_path, metadata_path)


def test_tuf_republish_brings_an_old_model_back_as_new_version(
    world: RepoWorld,
) -> None:
    v1, v2, v3 = (_next(SHIPPED, n) for n in (1, 2, 3))
    world.publish_version(v1)
    world.publish_version(v2)
    gateway = world.gateway("gw-1")
    assert gateway.check().result is UpdateResult.INSTALLED

    outcome = world.publisher.republish(v1)

    assert outcome.published and outcome.version == v3
    assert _metadata(world, v3).training["republished_from"] == v1
    assert _metadata(world, v3).sha256 == _metadata(world, v1).sha256
    assert gateway.check().result is UpdateResult.INSTALLED
    assert gateway.active_version == v3
    with pytest.raises(RolloutError, match="not published"):
        world.publisher.republish("9.9.9")


def test_tuf_refresh_resigns_before_expiry(
    tmp_path: Path, validation: ValidationSet
) -> None:
    now = dt.datetime.now(dt.UTC)
    world = make_world(tmp_path, validation)
    world.publish_version(_next(SHIPPED))
    status = world.repo.status()

    assert world.repo.refresh() == []
    # A day and a half later less than half of the timestamp's two days is
    # left (snapshot: 7 days, still fine).
    later = TufRepository(
        world.store,
        world.repo.bucket,
        world.repo.keys,
        clock=lambda: now + dt.timedelta(days=1.5),
    )
    assert later.refresh() == ["timestamp"]
    assert later.refresh(force=True) == ["snapshot", "timestamp"]
    after = world.repo.status()
    assert after.versions["timestamp"] == status.versions["timestamp"] + 2
    assert after.versions["targets"] == status.versions["targets"]
    assert world.gateway("gw-1").check().result is UpdateResult.INSTALLED


def test_tuf_cli_init_publish_status_refresh(tmp_path: Path) -> None:
    config = tmp_path / "coordinator.toml"
    config.write_text(
        '[store]\nroot = "store"\n[models]\nannounce = false\n'
        "validation_rides = 4\nvalidation_seed = 31\n"
        'keys_dir = "keys/tuf"\nvalidation_file = "validation.npz"\n'
    )
    root_out = tmp_path / "root.json"
    model_path, _ = model_files(tmp_path / "made", _next(SHIPPED))

    def run(*args: str) -> int:
        return coordinator_main(["--config", str(config), "models", *args])

    assert run("init", "--root-out", str(root_out)) == 0
    assert json.loads(root_out.read_text())["signed"]["_type"] == "root"
    assert run("init") == 7  # a second root would cut off every gateway
    assert run("publish", "--model", str(model_path)) == 0
    assert (tmp_path / "validation.npz").exists()
    assert run("refresh", "--force") == 0
    # Default canary share 0.1: the new version waits for its canaries.
    assert run("promote") == 0
    assert run("promote") == 7  # complete already
    assert run("status") == 0


def test_tuf_publication_recorded_in_catalog(world: RepoWorld, tmp_path: Path) -> None:
    catalog = SqliteCatalog(tmp_path / "catalog.db")
    catalog.migrate()
    try:
        world.publisher.records = catalog
        world.publisher.rollout = RolloutSettings(canary_gateways=("gw-a",))
        version = _next(SHIPPED)
        world.publish_version(version)
        world.publisher.set_stage(Stage.COMPLETE, "canaries healthy")

        (release,) = catalog.list_model_releases(MODEL)
        assert release.version == version and release.source == "file"
        assert release.gate_passed and release.targets_version == 2
        rollout = catalog.get_model_rollout(MODEL)
        assert rollout is not None
        assert (rollout.sequence, rollout.stage) == (2, "complete")
        assert rollout.canary_gateways == ("gw-a",)
    finally:
        catalog.close()


def test_tuf_publish_refuses_shipped_version_and_other_models(
    world: RepoWorld,
) -> None:
    model_path, metadata_path = model_files(world.root / "same", SHIPPED)
    with pytest.raises(PublishRefused, match="not above"):
        world.publisher.publish_model(model_path, metadata_path)

    other = dataclasses.replace(
        load_metadata(metadata_path), name="other-model", version=_next(SHIPPED)
    )
    save_metadata(other, metadata_path)
    with pytest.raises(PublishRefused, match="'other-model' model"):
        world.publisher.publish_model(model_path, metadata_path)
