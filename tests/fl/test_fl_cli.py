"""``cloud-coordinator fl``: refused settings, an unreachable SuperLink, status."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fl_helpers import free_port

from cloud_coordinator.catalog import SqliteCatalog
from cloud_coordinator.catalog.fl_records import RunState
from cloud_coordinator.cli import main


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "coordinator.toml"
    path.write_text(
        f"""
[catalog]
url = "sqlite:catalog.db"

[fl]
superlink = "127.0.0.1:{free_port()}"
insecure = true
out_dir = "heads"
"""
    )
    return path


def test_fl_cli_start_refusals_and_status(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["--config", str(config), "fl"]
    assert main([*base, "status"]) == 0
    assert "no federated runs yet" in capsys.readouterr().out
    # A setting out of range: refused before anything is recorded or sent.
    code = main(
        [*base, "start", "--rounds", "1", "--min-nodes", "1", "--set", "trim-beta=0.9"]
    )
    assert code == 2
    assert "trim-beta" in capsys.readouterr().err

    # Nobody listens at [fl] superlink: the run is recorded as failed, exit 6.
    assert main([*base, "start", "--rounds", "2", "--min-nodes", "3"]) == 6
    catalog = SqliteCatalog(config.parent / "catalog.db")
    try:
        (run,) = catalog.list_fl_runs()
    finally:
        catalog.close()
    assert run.state == RunState.FAILED and "StartRun failed" in str(run.detail)

    capsys.readouterr()
    assert main([*base, "status"]) == 0
    assert run.run_key in capsys.readouterr().out
    assert main([*base, "status", run.run_key, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["run"]["state"] == "failed" and report["rounds"] == []
    assert main([*base, "status", "no-such-run"]) == 2
    capsys.readouterr()
    assert main([*base, "status", "--json"]) == 0
    [listed] = json.loads(capsys.readouterr().out)
    assert listed["run_key"] == run.run_key and listed["state"] == "failed"
