"""Restarts: reopening the buffer in every state resumes from that state."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from custody_helpers import SUIT, make_log, pull, write_outputs

import edge_agent.custody.quarantine as quarantine_module
from edge_agent.custody import (
    CustodyBuffer,
    CustodyBusyError,
    CustodyStorageError,
    LogState,
    ReadOnlyBufferError,
    WorkAction,
)
from edge_agent.custody.index import INDEX_FILE_NAME


class SimulatedCrash(BaseException):
    """Raised in place of a commit to stop a step half-way, like a crash."""


def _drive_to(buffer: CustodyBuffer, state: LogState) -> None:
    log = make_log("L1")
    if state is LogState.PULLING:
        pull(buffer, log, upto=24_576)
        return
    if state is LogState.QUARANTINED:
        buffer.begin_log(SUIT, "L1", log.size_bytes, log.sha256_hex)
        buffer.append_log_bytes("L1", 0, b"\0" * log.size_bytes)
        with pytest.raises(Exception, match="SHA-256"):
            buffer.complete_log("L1")
        return
    pull(buffer, log)
    order = [LogState.PULLED, LogState.PROCESSED, LogState.UPLOADED]
    order += [LogState.RELEASED, LogState.PURGED]
    for reached in order[1 : order.index(state) + 1]:
        if reached is LogState.PROCESSED:
            outputs = write_outputs(buffer, "L1")
            buffer.mark_processed("L1", outputs, {"samples": 9}, True)
        elif reached is LogState.UPLOADED:
            buffer.mark_uploaded("L1", {"raw_csv": "k"})
        elif reached is LogState.RELEASED:
            buffer.mark_released("L1")
        else:
            buffer.purge("L1")


EXPECTED_ACTION = {
    LogState.PULLING: WorkAction.RESUME_PULL,
    LogState.PULLED: WorkAction.PROCESS,
    LogState.PROCESSED: WorkAction.UPLOAD,
    LogState.UPLOADED: WorkAction.RELEASE,
    LogState.RELEASED: WorkAction.PURGE,
    LogState.PURGED: None,
    LogState.QUARANTINED: None,
}


@pytest.mark.parametrize("state", list(LogState))
def test_restart_in_every_state_resumes_that_state(
    buffer_root: Path, state: LogState
) -> None:
    with CustodyBuffer.open(buffer_root) as buffer:
        _drive_to(buffer, state)
        before = buffer.get("L1")
    assert before.state is state

    with CustodyBuffer.open(buffer_root) as reopened:
        after = reopened.get("L1")
        work = reopened.pending_work()
        assert not reopened.last_recovery.changed

    assert after == before
    expected = EXPECTED_ACTION[state]
    assert [(item.action, item.log_id) for item in work] == (
        [] if expected is None else [(expected, "L1")]
    )
    if after.raw_path is not None:
        assert after.raw_path.stat().st_size == after.durable_offset
    for path in after.outputs.values():
        assert path.exists()


@pytest.mark.parametrize("state", list(LogState))
def test_work_after_restart_completes_the_lifecycle(
    buffer_root: Path, state: LogState
) -> None:
    with CustodyBuffer.open(buffer_root) as buffer:
        _drive_to(buffer, state)

    log = make_log("L1")
    with CustodyBuffer.open(buffer_root) as buffer:
        for _ in range(len(LogState)):
            work = buffer.pending_work()
            if not work:
                break
            [item] = work
            if item.action is WorkAction.RESUME_PULL:
                pull(buffer, log)
                raw = buffer.get("L1").raw_path
                assert raw is not None and raw.read_bytes() == log.data
            elif item.action is WorkAction.PROCESS:
                buffer.mark_processed("L1", write_outputs(buffer, "L1"), {}, False)
            elif item.action is WorkAction.UPLOAD:
                buffer.mark_uploaded("L1", {"raw_csv": "k"})
            elif item.action is WorkAction.RELEASE:
                buffer.mark_released("L1")
            else:
                buffer.purge("L1")
        final = buffer.get("L1").state
    done = LogState.QUARANTINED if state is LogState.QUARANTINED else LogState.PURGED
    assert final is done


def test_bytes_past_durable_offset_are_truncated_on_restart(
    buffer_root: Path,
) -> None:
    log = make_log("L1")
    with CustodyBuffer.open(buffer_root) as buffer:
        pull(buffer, log, upto=16_384)
        raw = buffer.get("L1").raw_path
    assert raw is not None
    # A crash after write() but before the offset was committed.
    with open(raw, "ab") as fh:
        fh.write(log.data[16_384:30_000])

    with CustodyBuffer.open(buffer_root) as buffer:
        assert buffer.last_recovery.truncated_bytes == {"L1": 30_000 - 16_384}
        assert raw.stat().st_size == 16_384
        assert buffer.begin_log(SUIT, "L1", log.size_bytes, log.sha256_hex) == 16_384
        pull(buffer, log)
        assert buffer.get("L1").state is LogState.PULLED


_KILL_BETWEEN_WRITE_AND_COMMIT = textwrap.dedent(
    """
    import os, signal, sys
    from pathlib import Path
    import edge_agent.custody.intake as module
    from edge_agent.custody import CustodyBuffer

    root, sha, size = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    data = Path(sys.argv[4]).read_bytes()
    buffer = CustodyBuffer.open(root)
    buffer.begin_log("SUIT-0001", "L1", size, sha)
    buffer.append_log_bytes("L1", 0, data[:10000])

    def die(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGKILL)

    module.update_log = die
    buffer.append_log_bytes("L1", 10000, data[10000:25000])
    """
)


def test_process_killed_between_write_and_commit_resumes_at_durable_offset(
    buffer_root: Path, tmp_path: Path
) -> None:
    log = make_log("L1")
    data_file = tmp_path / "log.bin"
    data_file.write_bytes(log.data)
    child = subprocess.run(
        [
            sys.executable,
            "-c",
            _KILL_BETWEEN_WRITE_AND_COMMIT,
            str(buffer_root),
            log.sha256_hex,
            str(log.size_bytes),
            str(data_file),
        ],
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert child.returncode == -signal.SIGKILL, child.stderr.decode()
    assert (buffer_root / "logs" / "L1.bin").stat().st_size == 25_000

    with CustodyBuffer.open(buffer_root) as buffer:
        assert buffer.last_recovery.truncated_bytes == {"L1": 15_000}
        assert (buffer_root / "logs" / "L1.bin").stat().st_size == 10_000
        assert buffer.get("L1").durable_offset == 10_000
        pull(buffer, log)
        record = buffer.get("L1")
    assert record.state is LogState.PULLED
    assert record.raw_path is not None and record.raw_path.read_bytes() == log.data


def test_interrupted_quarantine_is_finished_on_restart(
    buffer_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = make_log("L1")
    with CustodyBuffer.open(buffer_root) as buffer:
        pull(buffer, log)

        def crash(*args: object, **kwargs: object) -> int:
            raise SimulatedCrash

        monkeypatch.setattr(quarantine_module, "commit_entry", crash)
        with pytest.raises(SimulatedCrash):
            buffer.quarantine("L1", "decoder: bad magic at offset 0")
        monkeypatch.undo()
        # The data moved, the index still says pulled.
        assert buffer.get("L1").state is LogState.PULLED
        assert not (buffer_root / "logs" / "L1.bin").exists()

    with CustodyBuffer.open(buffer_root) as buffer:
        assert buffer.last_recovery.quarantines_finished == 1
        record = buffer.get("L1")
        [entry] = buffer.quarantine_entries()
    assert record.state is LogState.QUARANTINED
    assert record.error == "decoder: bad magic at offset 0"
    assert (entry.stored_path / "L1.bin").read_bytes() == log.data


def test_outputs_of_unfinished_processing_are_removed(buffer_root: Path) -> None:
    with CustodyBuffer.open(buffer_root) as buffer:
        pull(buffer, make_log("L1"))
        outputs = write_outputs(buffer, "L1")
    with CustodyBuffer.open(buffer_root) as buffer:
        assert buffer.last_recovery.stale_outputs_removed == ["L1"]
        assert not outputs["raw_csv"].exists()
        assert buffer.get("L1").state is LogState.PULLED


def test_leftovers_without_index_rows_are_handled(buffer_root: Path) -> None:
    with CustodyBuffer.open(buffer_root) as buffer:
        pull(buffer, make_log("L1"))
    logs = buffer_root / "logs"
    (logs / "EMPTY.bin").touch()
    (logs / "COPY.csv").write_bytes(b"half an import")
    (logs / ".L1.bin.abc123.tmp").write_bytes(b"temp")

    with CustodyBuffer.open(buffer_root) as buffer:
        report = buffer.last_recovery
        entries = buffer.quarantine_entries()
    assert report.orphans_removed == ["logs/EMPTY.bin"]
    assert report.orphans_quarantined == ["logs/COPY.csv"]
    assert report.temp_files_removed == 1
    assert [(e.name, e.files) for e in entries] == [("orphan-COPY.csv", ["COPY.csv"])]
    assert (entries[0].stored_path / "COPY.csv").read_bytes() == b"half an import"
    assert sorted(p.name for p in logs.iterdir()) == ["L1.bin"]


def test_missing_raw_bytes_of_pulled_log_are_quarantined(buffer_root: Path) -> None:
    with CustodyBuffer.open(buffer_root) as buffer:
        pull(buffer, make_log("L1"))
    (buffer_root / "logs" / "L1.bin").unlink()
    with CustodyBuffer.open(buffer_root) as buffer:
        record = buffer.get("L1")
        assert buffer.last_recovery.missing_raw_quarantined == ["L1"]
        # The suit still holds the log: it may be pulled again.
        log = make_log("L1")
        assert buffer.begin_log(SUIT, "L1", log.size_bytes, log.sha256_hex) == 0
    assert record.state is LogState.QUARANTINED


def test_missing_raw_file_of_a_pull_restarts_it(buffer_root: Path) -> None:
    with CustodyBuffer.open(buffer_root) as buffer:
        pull(buffer, make_log("L1"), upto=8192)
    (buffer_root / "logs" / "L1.bin").unlink()
    with CustodyBuffer.open(buffer_root) as buffer:
        assert buffer.last_recovery.restarted_pulls == ["L1"]
        assert buffer.get("L1").durable_offset == 0


def test_index_from_a_newer_agent_is_refused(buffer_root: Path) -> None:
    CustodyBuffer.open(buffer_root).close()
    conn = sqlite3.connect(buffer_root / INDEX_FILE_NAME)
    conn.execute("PRAGMA user_version=99")
    conn.commit()
    conn.close()
    with pytest.raises(CustodyStorageError, match="schema version 99"):
        CustodyBuffer.open(buffer_root)


def test_reason_file_survives_as_json(buffer_root: Path) -> None:
    with CustodyBuffer.open(buffer_root) as buffer:
        pull(buffer, make_log("L1"))
        entry = buffer.quarantine("L1", "why")
    reason = json.loads((entry.stored_path / "reason.json").read_text())
    assert reason["log_id"] == "L1"
    assert reason["reason"] == "why"
    assert os.path.isabs(reason["moves"][0]["source"])


def test_second_writer_is_refused_while_the_first_holds_the_buffer(
    buffer_root: Path,
) -> None:
    first = CustodyBuffer.open(buffer_root)
    try:
        with pytest.raises(CustodyBusyError, match="another process"):
            CustodyBuffer.open(buffer_root)
    finally:
        first.close()
    CustodyBuffer.open(buffer_root).close()


def test_read_only_buffer_reads_without_recovery_and_refuses_changes(
    buffer_root: Path,
) -> None:
    log = make_log("L1")
    with CustodyBuffer.open(buffer_root) as writer:
        pull(writer, log, upto=8192)
        raw = writer.get("L1").raw_path
        assert raw is not None
        # Bytes a running agent wrote but has not committed yet.
        with open(raw, "ab") as fh:
            fh.write(b"in flight")

        with CustodyBuffer.open(buffer_root, read_only=True) as reader:
            assert reader.counts_by_state()[LogState.PULLING] == 1
            assert reader.get("L1").durable_offset == 8192
            assert raw.stat().st_size == 8192 + len(b"in flight")
            with pytest.raises(ReadOnlyBufferError):
                reader.begin_log(SUIT, "L2", 1, "a" * 64)
            with pytest.raises(ReadOnlyBufferError):
                reader.quarantine("L1", "no")


def test_read_only_open_of_a_missing_buffer_fails(tmp_path: Path) -> None:
    with pytest.raises(CustodyStorageError, match="no buffer"):
        CustodyBuffer.open(tmp_path / "nothing", read_only=True)
