"""Federated-learning wiring of the agent: windows kept, commands applied.

Processing a log fills ``buffer/fl-windows.db``; ``crash_verdict`` and
``training_consent`` commands published on the gateway's commands topic
through a real Mosquitto reach that store; a malformed one is quarantined
and counted while the agent keeps running; a failing store never fails
custody.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import sqlite3
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from agent_helpers import RIDER, SERIAL, DockedSuit, gateway_config

from edge_agent.cli.cmd_ingest import import_log_id
from edge_agent.config import ProcessingConfig
from edge_agent.custody import LogState
from edge_agent.fl.store import STORE_FILE_NAME
from edge_agent.processing.training_windows import TrainingWindowKeeper
from edge_agent.service.agent import EdgeAgent
from edge_agent.service.runtime import BUFFER_DIR, AgentRuntime, open_runtime
from edge_agent.service.steps import process_pending
from tests.mqtt.mqtt_helpers import Observer, plain_config, wait_until
from tests.support.mosquitto import run_mosquitto

pytestmark = pytest.mark.timeout(300)

# Generous: the machine is shared; polling stops as soon as the state holds.
COMMAND_WAIT_S = 60.0


def _windows(workdir: Path) -> list[tuple[str, str, int | None, str]]:
    """Return (log_id, rider_id, label, source) of every stored window."""
    path = workdir / BUFFER_DIR / STORE_FILE_NAME
    if not path.exists():
        return []
    with sqlite3.connect(path) as db:
        rows = db.execute(
            "SELECT log_id, rider_id, label, source FROM windows ORDER BY window_id"
        ).fetchall()
    return [(str(a), str(b), c, str(d)) for a, b, c, d in rows]


def _by_source(
    rows: list[tuple[str, str, int | None, str]], log_id: str
) -> dict[str, int]:
    counts: dict[str, int] = {}
    for row_log, _, _, source in rows:
        if row_log == log_id:
            counts[source] = counts.get(source, 0) + 1
    return counts


def _command(kind: str, **fields: Any) -> dict[str, Any]:
    return {
        "schema": "gateway-command/1",
        "command_id": str(uuid.uuid4()),
        "type": kind,
        "issued_at": datetime.now(UTC).isoformat(),
        **fields,
    }


async def test_windows_kept_then_verdict_consent_and_bad_command_over_mqtt(
    tmp_path: Path, docked_suit: DockedSuit
) -> None:
    workdir = tmp_path / "gw"
    with run_mosquitto(tmp_path / "broker") as broker:
        config = dataclasses.replace(
            gateway_config(workdir),
            mqtt=plain_config(broker.port, gateway_id="gw-test"),
        )
        runtime = open_runtime(config)
        cloud = Observer(broker.port, [])
        try:
            await EdgeAgent(runtime, docked_suit.backends).async_cycle()
            assert runtime.mqtt is not None
            records = runtime.buffer.logs()
            crash = next(r for r in records if r.crash_detected)
            calm = next(r for r in records if not r.crash_detected)

            # Processing kept labelled windows of both logs, for the rider.
            rows = _windows(workdir)
            assert {rider for _, rider, _, _ in rows} == {RIDER}
            assert set(_by_source(rows, calm.log_id)) == {"normal"}
            crash_sources = _by_source(rows, crash.log_id)
            assert crash_sources["airbag"] >= 1 and crash_sources["normal"] >= 1
            assert crash_sources["detected"] >= 1  # pending the cloud's verdict
            assert runtime.training_store_errors == 0

            # A confirmed crash_verdict labels the pending windows.
            assert crash.analytics is not None
            (event,) = crash.analytics["crash"]["events"]
            topic = runtime.mqtt.topics.commands
            verdict = _command(
                "crash_verdict",
                rider_id=RIDER,
                suit_id=SERIAL,
                log_id=crash.log_id,
                verdict="confirmed",
                t_offset_s=event["t_offset_s"],
            )
            cloud.wait_puback(cloud.publish(topic, json.dumps(verdict)))
            wait_until(
                lambda: "detected" not in _by_source(_windows(workdir), crash.log_id),
                "pending windows labelled",
                COMMAND_WAIT_S,
            )
            labelled = _by_source(_windows(workdir), crash.log_id)
            assert labelled["confirmed"] >= 1

            # A malformed command is kept aside and counted; the link goes on.
            bad = dict(verdict, command_id=str(uuid.uuid4()), verdict="maybe")
            cloud.wait_puback(cloud.publish(topic, json.dumps(bad)))
            wait_until(
                lambda: (
                    runtime.mqtt is not None
                    and runtime.mqtt.stats.inbound_rejected == 1
                ),
                "bad command rejected",
                COMMAND_WAIT_S,
            )
            (entry,) = runtime.mqtt.outbox.quarantine.entries()
            assert entry.topic == topic
            assert f"topic {topic!r}, field 'verdict'" in entry.reason
            assert runtime.mqtt.connected

            # An opt-out deletes every window of the rider.
            consent = _command("training_consent", rider_id=RIDER, opted_out=True)
            cloud.wait_puback(cloud.publish(topic, json.dumps(consent)))
            wait_until(
                lambda: not _windows(workdir), "rider's windows deleted", COMMAND_WAIT_S
            )
            assert runtime.mqtt.stats.handler_errors == 0
            assert runtime.mqtt.connected
        finally:
            cloud.close()
            runtime.close()


def _import_crash_log(runtime: AgentRuntime, log_path: Path) -> str:
    log_id = import_log_id(log_path)
    runtime.buffer.register_imported(log_path, SERIAL, log_id, rider_id=RIDER)
    return log_id


def test_failing_window_store_never_fails_processing(
    tmp_path: Path, small_logs: list[Path], caplog: pytest.LogCaptureFixture
) -> None:
    workdir = tmp_path / "gw"
    # A folder where the store's file should be: SQLite cannot open it.
    (workdir / BUFFER_DIR / STORE_FILE_NAME).mkdir(parents=True)
    runtime = open_runtime(gateway_config(workdir))
    try:
        log_id = _import_crash_log(runtime, small_logs[1])
        with caplog.at_level(logging.WARNING, "edge_agent.service.steps"):
            report = process_pending(runtime)
        record = runtime.buffer.find(log_id)
    finally:
        runtime.close()
    assert report.processed == [log_id] and not report.quarantined
    assert record is not None and record.state is LogState.PROCESSED
    assert runtime.training_store_errors == 1
    assert report.results[log_id].training is None  # not held in the report
    (warning,) = [r for r in caplog.records if "training windows" in r.message]
    assert warning.levelno == logging.WARNING
    assert log_id in warning.message and STORE_FILE_NAME in warning.message


def test_training_windows_off_keeps_nothing(
    tmp_path: Path, small_logs: list[Path]
) -> None:
    workdir = tmp_path / "gw"
    config = dataclasses.replace(
        gateway_config(workdir),
        processing=ProcessingConfig(training_windows=False),
    )
    runtime = open_runtime(config)
    try:
        log_id = _import_crash_log(runtime, small_logs[1])
        report = process_pending(runtime)
    finally:
        runtime.close()
    assert report.processed == [log_id]
    assert runtime.training_store is None
    assert not (workdir / BUFFER_DIR / STORE_FILE_NAME).exists()


def _scored(
    keeper: TrainingWindowKeeper,
    count: int,
    high: set[int],
    stop_at: int,
    then: Callable[[], None],
) -> None:
    """Feed ``count`` windows (window i filled with i) in batches of 16.

    ``then`` runs once ``stop_at`` windows have been scored.
    """
    for first in range(0, count, 16):
        if first == stop_at:
            then()
        index = np.arange(first, min(count, first + 16))
        windows = np.broadcast_to(
            index[:, None, None].astype(np.float32), (len(index), 200, 6)
        )
        probability = np.array([1.0 if i in high else 0.0 for i in index])
        keeper.add(first, windows, probability.astype(np.float32))


def test_keeper_keeps_late_airbag_and_high_score_windows_and_stays_bounded() -> None:
    keeper = TrainingWindowKeeper(0.9, normal_every=8, max_normal=20)
    _scored(keeper, 400, high={50}, stop_at=64, then=lambda: keeper.note_airbag(30.0))
    kept = keeper.finish()

    index = np.rint(kept.starts_s / 0.5).astype(int)
    assert np.array_equal(kept.windows[:, 0, 0], index.astype(np.float32))
    assert {55, 56, 57, 58, 59, 60, 61} <= set(index.tolist())  # airbag at 30 s
    assert set(range(46, 55)) <= set(index.tolist())  # around the high score
    assert kept.airbag_offsets_s == [30.0]
    # 400 windows / 8 = 50 normal windows > 20: thinned to one in 32.
    assert kept.normal_every == 32
    normal = [i for i in index.tolist() if not 46 <= i <= 61]
    assert normal == list(range(0, 400, 32))
