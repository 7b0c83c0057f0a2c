"""The agent's steps on an encrypted, budgeted buffer, and the [custody] keys."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from custody_helpers import SUIT, pull, suit_log

from edge_agent.config import ConfigError, GatewayConfig, config_from_mapping
from edge_agent.custody import CustodyBuffer, LogState
from edge_agent.custody.index import INDEX_FILE_NAME
from edge_agent.service.runtime import BUFFER_DIR, open_runtime
from edge_agent.service.steps import process_pending, upload_pending

RIDER = "rider-7"


def _config(workdir: Path, **custody: object) -> GatewayConfig:
    return config_from_mapping(
        {
            "gateway": {"id": "gw-test", "workdir": str(workdir)},
            "suits": {SUIT: {"rider_id": RIDER}},
            "custody": custody,
        },
        source="test.toml",
    )


def _store_files(workdir: Path, bucket: str, suffix: str) -> list[Path]:
    return [
        path
        for path in (workdir / "store" / bucket).rglob(f"*{suffix}")
        if not path.name.endswith(".meta.json")
    ]


def test_encrypted_log_is_processed_and_uploaded_as_plaintext(
    tmp_path: Path, key_file: Path, suit_log_bytes: bytes
) -> None:
    work_dir = tmp_path / "ram"
    config = _config(tmp_path, key_file=str(key_file), work_dir=str(work_dir))
    runtime = open_runtime(config)
    try:
        assert runtime.buffer.encrypted
        pull(runtime.buffer, suit_log("RIDE1", suit_log_bytes))
        runtime.buffer.assign_rider("RIDE1", RIDER)
        processed = process_pending(runtime)
        uploaded = upload_pending(runtime)
        record = runtime.buffer.get("RIDE1")
    finally:
        runtime.close()

    assert processed.processed == ["RIDE1"] and not processed.quarantined
    assert uploaded.uploaded == ["RIDE1"] and not uploaded.deferred
    assert record.state is LogState.UPLOADED
    # The report names the stored (encrypted) outputs, not working copies.
    result = processed.results["RIDE1"]
    assert result.csv_path == record.outputs["raw_csv"]
    stored_csv = record.outputs["raw_csv"].read_bytes()
    assert not stored_csv.startswith(b"\x1f\x8b")
    assert list(work_dir.iterdir()) == [work_dir / "work"]  # private subfolder
    assert list((work_dir / "work").iterdir()) == []  # no plaintext left behind
    assert (work_dir / "work").stat().st_mode & 0o777 == 0o700

    # Object storage got the plaintext: a gzip CSV and the analytics JSON.
    [csv_object] = _store_files(tmp_path, "raw", ".csv.gz")
    with gzip.open(csv_object, "rt") as stream:
        header = stream.readline()
    assert header.startswith("t_s,") and "acc_x_mps2" in header
    [analytics_object] = _store_files(tmp_path, "analytics", ".json")
    analytics = json.loads(analytics_object.read_text())
    assert analytics["log_id"] == "RIDE1" and analytics["rider_id"] == RIDER
    assert record.analytics is not None
    assert record.analytics["samples"] == analytics["samples"]


def test_rebuilt_log_gets_its_rider_from_the_configuration(
    tmp_path: Path, suit_log_bytes: bytes
) -> None:
    config = _config(tmp_path)
    runtime = open_runtime(config)
    try:
        pull(runtime.buffer, suit_log("RIDE2", suit_log_bytes))
    finally:
        runtime.close()
    (tmp_path / BUFFER_DIR / INDEX_FILE_NAME).unlink()

    runtime = open_runtime(config)
    try:
        assert runtime.buffer.get("RIDE2").rider_id is None  # lost with the index
        report = process_pending(runtime)
        record = runtime.buffer.get("RIDE2")
    finally:
        runtime.close()
    assert report.processed == ["RIDE2"]
    assert record.rider_id == RIDER and record.state is LogState.PROCESSED


def test_tampered_encrypted_log_is_quarantined_by_the_process_step(
    tmp_path: Path, key_file: Path, suit_log_bytes: bytes
) -> None:
    config = _config(tmp_path, key_file=str(key_file))
    runtime = open_runtime(config)
    try:
        pull(runtime.buffer, suit_log("RIDE3", suit_log_bytes))
        raw = runtime.buffer.get("RIDE3").raw_path
        assert raw is not None
        data = bytearray(raw.read_bytes())
        data[len(data) // 2] ^= 0x10
        raw.write_bytes(bytes(data))
        report = process_pending(runtime)
        state = runtime.buffer.get("RIDE3").state
    finally:
        runtime.close()
    assert "fails authentication" in report.quarantined["RIDE3"]
    assert state is LogState.QUARANTINED


def test_budget_from_the_configuration_refuses_a_pull(tmp_path: Path) -> None:
    runtime = open_runtime(_config(tmp_path, budget_bytes=1_000_000))
    try:
        assert runtime.buffer.budget_bytes == 1_000_000
        fits, reason = runtime.buffer.can_accept(2_000_000, "BIG")
    finally:
        runtime.close()
    assert not fits and "budget of 1000000 bytes" in reason


def test_custody_keys_default_to_off(tmp_path: Path) -> None:
    config = _config(tmp_path)
    assert config.custody_budget_bytes is None
    assert config.custody_key_file is None
    assert config.custody_work_dir is None
    relative = _config(tmp_path, key_file="keys/custody.key", work_dir="/run/x")
    assert relative.custody_key_file == tmp_path / "keys/custody.key"
    assert relative.custody_work_dir == Path("/run/x")
    with CustodyBuffer.open(tmp_path / "b") as buffer:
        assert not buffer.encrypted and buffer.budget_bytes is None


def test_bad_custody_keys_name_the_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"\[custody\] budget_bytes = -5"):
        _config(tmp_path, budget_bytes=-5)
    with pytest.raises(ConfigError, match=r"\[custody\] has unknown key 'key'"):
        _config(tmp_path, key="x")
