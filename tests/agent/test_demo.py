"""The demo's main job, end to end over the emulated BLE link."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edge_agent.cli import main
from edge_agent.custody import LogState
from edge_agent.service.demo import async_run_demo


@pytest.mark.timeout(600)
async def test_demo_pulls_processes_uploads_and_releases(tmp_path: Path) -> None:
    result = await async_run_demo(tmp_path)

    assert len(result.records) == 2
    assert sorted(result.erased_on_suit) == sorted(r.log_id for r in result.records)
    # The suit required a bond and erased each log only against a receipt.
    assert result.receipted_on_suit == result.erased_on_suit
    crash_logs = []
    for record in result.records:
        assert record.state in (LogState.RELEASED, LogState.PURGED)
        analytics_key = record.object_keys["analytics"]
        stored = json.loads((result.store_root / analytics_key).read_text())
        assert stored["schema"] == "ride-analytics/1"
        assert stored["log_id"] == record.log_id
        assert (result.store_root / record.object_keys["raw_csv"]).stat().st_size > 0
        truth = result.truths[record.log_id]
        assert stored["crash"]["detected"] is truth["crash"]["detected"]
        if truth["crash"]["detected"]:
            crash_logs.append(record.log_id)
            crash_key = record.object_keys["crash_raw_csv"]
            assert crash_key.startswith("crash/")
            assert (result.store_root / crash_key).exists()
            found = stored["crash"]["events"][0]["t_offset_s"]
            expected = truth["crash"]["events"][0]["t_offset_s"]
            assert abs(found - expected) <= 0.5
        else:
            assert "crash_raw_csv" not in record.object_keys
    assert len(crash_logs) == 1


@pytest.mark.timeout(600)
def test_demo_cli_prints_summary_and_exits_zero(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["demo", "--workdir", str(tmp_path)])

    out = capsys.readouterr().out
    assert code == 0, out
    assert "lean L/R" in out and "turns L/R" in out
    assert "YES at" in out
    assert out.count("on the suit: erased") == 2

    # Running it again finds everything already committed: nothing is redone.
    assert main(["status", "--workdir", str(tmp_path), "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["logs"]["purged"] == 2
