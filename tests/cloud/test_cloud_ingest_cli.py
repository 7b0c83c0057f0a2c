"""``cloud-coordinator ingest`` from the command line (in-process main)."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from cloud_gateway_emu import upload_log
from cloud_helpers import T0

from cloud_coordinator.cli import main
from edge_agent.upload import BodyChecksum, BucketNames, ChecksumMode, LocalDirStore


def _config(tmp_path: Path, broker_port: int = 1) -> Path:
    path = tmp_path / "cloud.toml"
    path.write_text(
        f"""
[catalog]
url = "sqlite:catalog.db"

[store]
root = "store"

[broker]
port = {broker_port}
"""
    )
    return path


def test_ingest_cli_reconciles_and_lists_the_quarantine(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = LocalDirStore(tmp_path / "store")
    buckets = BucketNames()
    upload_log(store, buckets, start=T0, crash=True)
    store.put_object(
        "raw",
        "r1/SUIT-1/stray.csv.gz",
        b"no metadata",
        metadata={},
        checksum=BodyChecksum.of(b"no metadata", ChecksumMode.MD5),
    )
    config = str(_config(tmp_path))

    assert main(["--config", config, "ingest", "--reconcile-once"]) == 0
    assert "4 objects listed, 3 catalogued, 1 kept aside" in capsys.readouterr().out
    assert main(["--config", config, "ingest", "--quarantine", "5"]) == 0
    listed = capsys.readouterr().out.strip().splitlines()
    assert len(listed) == 1
    assert "reconcile: object raw/r1/SUIT-1/stray.csv.gz: no sha256" in listed[0]


def test_ingest_cli_broker_unreachable_exits_6(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    # Nothing listens on the port once the probe is closed.
    config = str(_config(tmp_path, port))
    assert main(["--config", config, "ingest", "--client-id", "cli-test"]) == 6
