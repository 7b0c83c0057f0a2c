"""``cloud-coordinator retention`` and ``privacy`` from the command line."""

from __future__ import annotations

import datetime as dt
import io
import json
import tarfile
from pathlib import Path

import pytest
from cloud_helpers import store_log

from cloud_coordinator.catalog import AuditAction, Rider, SqliteCatalog, UserType
from cloud_coordinator.cli import EXIT_OK, EXIT_USAGE, main
from edge_agent.upload import BucketNames, LocalDirStore


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Path, SqliteCatalog, LocalDirStore, dict[str, str]]:
    config = tmp_path / "coordinator.toml"
    config.write_text(
        '[catalog]\nurl = "sqlite:catalog.db"\n[store]\nroot = "store"\n'
        "[retention]\nraw_days = 14\nnotice_days = 2\n"
    )
    catalog = SqliteCatalog(tmp_path / "catalog.db")
    catalog.migrate()
    store = LocalDirStore(tmp_path / "store")
    keys = {}
    now = dt.datetime.now(dt.UTC)
    for rider, crash in (("r1", False), ("r2", True)):
        registered = catalog.upsert_rider(Rider(rider, UserType.PRIVATE))
        log = store_log(
            store, catalog, BucketNames(), rider=registered, suit="S", start=now,
            crash=crash,
        )  # fmt: skip
        keys[rider] = log.objects["raw_csv"].key
    return config, catalog, store, keys


def test_retention_cli_dry_run_then_run(
    setup: tuple[Path, SqliteCatalog, LocalDirStore, dict[str, str]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    config, catalog, store, keys = setup
    now = dt.datetime.now(dt.UTC)
    later = (now + dt.timedelta(days=15)).isoformat()
    base = ["--config", str(config), "retention", "--list"]
    # The job did not run during the notice window: the dry run shows the
    # notice due and no deletion (issue 5).
    assert main([*base, "--now", later, "--dry-run"]) == EXIT_OK
    out = capsys.readouterr().out
    assert f"notice  r1 raw/{keys['r1']}" in out
    assert "would notify 1 objects, delete 0" in out
    assert store.head_object("raw", keys["r1"]) is not None

    # The late run tells the rider and keeps the data for the notice period.
    assert main([*base, "--now", later]) == EXIT_OK
    assert "did notify 1 objects, delete 0" in capsys.readouterr().out
    assert store.head_object("raw", keys["r1"]) is not None
    (notice,) = catalog.list_audit(limit=5).items
    assert notice.action is AuditAction.RETENTION_NOTICE and notice.key == keys["r1"]

    after = (now + dt.timedelta(days=19)).isoformat()
    assert main([*base, "--now", after, "--dry-run"]) == EXIT_OK
    out = capsys.readouterr().out
    assert f"delete  r1 raw/{keys['r1']}" in out and "would notify 0" in out
    assert main([*base, "--now", after]) == EXIT_OK
    out = capsys.readouterr().out
    assert "did notify 0 objects, delete 1" in out
    assert store.head_object("raw", keys["r1"]) is None
    assert store.head_object("raw", keys["r2"]) is not None  # crash kept
    (_, entry) = catalog.list_audit(limit=5).items
    assert entry.action is AuditAction.RETENTION_DELETE and entry.key == keys["r1"]

    assert main([*base, "--now", after]) == EXIT_OK
    assert "delete 0" in capsys.readouterr().out
    with pytest.raises(SystemExit) as usage:
        main(["--config", str(config), "retention", "--now", "yesterday"])
    assert usage.value.code == EXIT_USAGE


def test_privacy_cli_export_and_erase(
    setup: tuple[Path, SqliteCatalog, LocalDirStore, dict[str, str]],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    config, catalog, store, keys = setup
    out_file = tmp_path / "r1.tar"
    base = ["--config", str(config), "privacy"]
    assert main([*base, "export", "--rider", "r1", "--out", str(out_file)]) == EXIT_OK
    with tarfile.open(out_file) as archive:
        names = archive.getnames()
        member = archive.extractfile("manifest.json")
        assert member is not None
        manifest = json.load(io.BytesIO(member.read()))
    assert f"objects/raw/{keys['r1']}" in names
    assert all("/r2/" not in name for name in names)
    assert len(manifest["objects"]) == 2
    assert (
        main([*base, "export", "--rider", "r1", "--out", str(out_file)]) == EXIT_USAGE
    )

    wrong = [*base, "erase", "--rider", "r1", "--confirm", "r2"]
    assert main(wrong) == EXIT_USAGE
    assert store.head_object("raw", keys["r1"]) is not None
    capsys.readouterr()
    assert main([*base, "erase", "--rider", "r1", "--confirm", "r1"]) == EXIT_OK
    report = json.loads(capsys.readouterr().out)
    assert report["catalogued_objects"] == 2
    assert store.list_objects("raw", prefix="r1/") == []
    assert store.head_object("raw", keys["r2"]) is not None
    actors = {e.actor for e in catalog.list_audit(rider_id="r1", limit=20).items}
    assert len(actors) == 1 and actors.pop().startswith("operator:")
