"""Start-up integrity: a damaged index is set aside and rebuilt from the files."""

from __future__ import annotations

import io
import json
import logging
import os
import sqlite3
from pathlib import Path

import pytest
from custody_helpers import SUIT, make_log, pull, suit_log, write_outputs

from edge_agent.custody import (
    CustodyBuffer,
    LogConflictError,
    LogState,
    WrongKeyError,
    generate_key_file,
)
from edge_agent.custody.index import INDEX_FILE_NAME
from edge_agent.custody.paths import KEEP_ON_OUTPUT_RESET
from edge_agent.service.steps import IMPORT_OPTIONS_FILE
from edge_agent.upload import OUTPUT_ANALYTICS, OUTPUT_RAW_CSV
from firmware_bridge.logformat import LogReader


def _corrupt_middle(db_path: Path) -> None:
    """Overwrite the middle pages of an SQLite file with garbage."""
    size_bytes = db_path.stat().st_size
    page_bytes = 4096
    assert size_bytes >= 3 * page_bytes, "index too small to corrupt its middle"
    with open(db_path, "r+b") as stream:
        stream.seek(page_bytes)
        stream.write(b"\xa5\x5a" * ((size_bytes - 2 * page_bytes) // 2))


def _processing_outputs(buffer: CustodyBuffer, log_id: str) -> dict[str, Path]:
    folder = buffer.output_dir(log_id)
    csv = folder / f"{log_id}.csv.gz"
    csv.write_bytes(b"\x1f\x8b" + os.urandom(3000))
    analytics = folder / f"{log_id}.json"
    document = {
        "log_id": log_id,
        "suit_id": SUIT,
        "rider_id": "rider-9",
        "crash": {"detected": True},
    }
    analytics.write_text(json.dumps(document))
    return {OUTPUT_RAW_CSV: csv, OUTPUT_ANALYTICS: analytics}


def _fill(buffer: CustodyBuffer, ride: bytes) -> None:
    """Leave logs in pulled, pulling (cut mid-block), processed and quarantine."""
    pull(buffer, suit_log("DONE", ride))
    pull(buffer, suit_log("HALF", ride), upto=len(ride) // 2 + 7)
    pull(buffer, suit_log("PROC", ride))
    outputs = _processing_outputs(buffer, "PROC")
    buffer.mark_processed("PROC", outputs, {"log_id": "PROC"}, True)
    pull(buffer, make_log("BAD", 5000))
    buffer.quarantine("BAD", "decoder: bad magic at offset 0")
    # Enough rows that the index has middle pages to damage.
    for number in range(40):
        buffer.begin_log(SUIT, f"PAD{number:03d}", 10, "0" * 64)


@pytest.mark.parametrize("encrypted", [False, True], ids=["plain", "encrypted"])
def test_corrupt_index_is_moved_aside_and_rebuilt(
    buffer_root: Path,
    tmp_path: Path,
    suit_log_bytes: bytes,
    caplog: pytest.LogCaptureFixture,
    encrypted: bool,
) -> None:
    key = generate_key_file(tmp_path / "k") if encrypted else None
    with CustodyBuffer.open(buffer_root, key_file=key) as buffer:
        _fill(buffer, suit_log_bytes)
        before = {r.log_id: r for r in buffer.logs()}
    db_path = buffer_root / INDEX_FILE_NAME
    _corrupt_middle(db_path)

    with caplog.at_level(logging.ERROR, logger="edge_agent.custody"):
        buffer = CustodyBuffer.open(buffer_root, key_file=key)
    with buffer:
        report = buffer.last_recovery
        logs = {r.log_id: r for r in buffer.logs()}
        [entry] = buffer.quarantine_entries()

    # Set aside with a clear ERROR naming the file.
    assert report.index_problem is not None
    assert report.index_moved_to is not None
    moved = Path(report.index_moved_to)
    assert moved.exists() and moved.name.startswith("custody.db.corrupt-")
    assert any(
        str(db_path) in r.getMessage() and str(moved) in r.getMessage()
        for r in caplog.records
        if r.levelname == "ERROR"
    )

    # The logs are back, in the states the files can prove.
    assert report.rebuilt
    assert logs["DONE"].state is LogState.PULLED
    assert logs["DONE"].sha256_hex == before["DONE"].sha256_hex
    assert logs["DONE"].size_bytes == len(suit_log_bytes)
    assert logs["DONE"].suit_serial == SUIT
    assert logs["DONE"].rebuilt
    assert logs["HALF"].state is LogState.PULLING
    assert logs["HALF"].durable_offset == len(suit_log_bytes) // 2 + 7
    assert logs["PROC"].state is LogState.PROCESSED
    assert logs["PROC"].rider_id == "rider-9"
    assert logs["PROC"].crash_detected is True
    assert logs["PROC"].output_sha256 == before["PROC"].output_sha256
    assert report.rebuilt_logs["PROC"] == "processed"
    assert entry.log_id == "BAD" and entry.reason == "decoder: bad magic at offset 0"
    assert "BAD" not in logs


def test_garbage_index_file_is_replaced(buffer_root: Path) -> None:
    log = make_log("L1")
    with CustodyBuffer.open(buffer_root) as buffer:
        pull(buffer, log, upto=20_000)
    (buffer_root / INDEX_FILE_NAME).write_bytes(os.urandom(8192))
    with CustodyBuffer.open(buffer_root) as buffer:
        assert "SQLite cannot read it" in (buffer.last_recovery.index_problem or "")
        assert buffer.get("L1").durable_offset == 20_000
        # Random bytes are not a suit log: kept as an unfinished pull.
        assert buffer.get("L1").state is LogState.PULLING
    # A second open finds a healthy index: nothing more to do.
    with CustodyBuffer.open(buffer_root) as buffer:
        assert not buffer.last_recovery.changed


def test_rebuilt_partial_pull_resumes_when_the_suit_announces_it(
    buffer_root: Path, suit_log_bytes: bytes
) -> None:
    log = suit_log("HALF", suit_log_bytes)
    with CustodyBuffer.open(buffer_root) as buffer:
        pull(buffer, log, upto=100_003)
    (buffer_root / INDEX_FILE_NAME).unlink()

    with CustodyBuffer.open(buffer_root) as buffer:
        assert buffer.last_recovery.rebuilt_logs == {"HALF": "pulling"}
        assert buffer.get("HALF").suit_serial == SUIT
        offset = buffer.begin_log("SUIT-0001", "HALF", log.size_bytes, log.sha256_hex)
        assert offset == 100_003
        pull(buffer, log)
        record = buffer.get("HALF")
    assert record.state is LogState.PULLED and not record.rebuilt
    assert record.sha256_hex == log.sha256_hex
    assert record.raw_path is not None
    assert record.raw_path.read_bytes() == suit_log_bytes


def test_lost_index_with_encrypted_partial_and_complete_pulls(
    buffer_root: Path, key_file: Path
) -> None:
    done, half = make_log("DONE", 200_000), make_log("HALF", 200_000)
    with CustodyBuffer.open(buffer_root, key_file=key_file) as buffer:
        pull(buffer, done)
        pull(buffer, half, upto=90_000)
    (buffer_root / INDEX_FILE_NAME).unlink()

    with CustodyBuffer.open(buffer_root, key_file=key_file) as buffer:
        states = buffer.last_recovery.rebuilt_logs
        # The end record proves completeness even for bytes that are no log.
        assert states == {"DONE": "pulled", "HALF": "pulling"}
        assert buffer.get("DONE").sha256_hex == done.sha256_hex
        assert buffer.begin_log(SUIT, "HALF", half.size_bytes, half.sha256_hex) == (
            90_000
        )
        pull(buffer, half)
        with buffer.readable_raw("HALF") as plain:
            assert plain.read_bytes() == half.data


def test_rebuild_with_the_wrong_key_stops_and_retries_with_the_right_one(
    buffer_root: Path, key_file: Path, tmp_path: Path
) -> None:
    with CustodyBuffer.open(buffer_root, key_file=key_file) as buffer:
        pull(buffer, make_log("L1"))
    (buffer_root / INDEX_FILE_NAME).unlink()
    wrong = generate_key_file(tmp_path / "wrong.key")
    with pytest.raises(WrongKeyError, match="key id"):
        CustodyBuffer.open(buffer_root, key_file=wrong)
    assert (buffer_root / "logs" / "L1.bin").exists()  # nothing moved away
    with CustodyBuffer.open(buffer_root, key_file=key_file) as buffer:
        assert buffer.get("L1").state is LogState.PULLED


def test_unreadable_file_is_quarantined_during_rebuild(
    buffer_root: Path, key_file: Path
) -> None:
    with CustodyBuffer.open(buffer_root, key_file=key_file) as buffer:
        pull(buffer, make_log("L1", 100_000))
        pull(buffer, make_log("L2", 100_000))
    raw = buffer_root / "logs" / "L2.bin"
    data = bytearray(raw.read_bytes())
    data[200] ^= 0xFF
    raw.write_bytes(bytes(data))
    (buffer_root / INDEX_FILE_NAME).unlink()

    with CustodyBuffer.open(buffer_root, key_file=key_file) as buffer:
        report = buffer.last_recovery
        [entry] = buffer.quarantine_entries()
        assert buffer.get("L1").state is LogState.PULLED
        assert buffer.find("L2") is None
    assert report.unreadable_quarantined == ["logs/L2.bin"]
    assert "fails authentication" in entry.reason
    assert (entry.stored_path / "L2.bin").read_bytes() == bytes(data)


def test_processed_log_with_lost_outputs_is_processed_again(
    buffer: CustodyBuffer, buffer_root: Path
) -> None:
    pull(buffer, make_log("L1"))
    outputs = write_outputs(buffer, "L1")
    buffer.mark_processed("L1", outputs, {"samples": 1}, False)
    buffer.close()
    outputs["raw_csv"].unlink()
    with CustodyBuffer.open(buffer_root) as reopened:
        assert reopened.last_recovery.reprocess == ["L1"]
        record = reopened.get("L1")
        assert record.state is LogState.PULLED
        assert record.outputs == {} and record.analytics is None
        assert not outputs["analytics"].exists()  # the stale rest went too
        reopened.mark_processed("L1", write_outputs(reopened, "L1"), {}, False)


def test_outputs_reset_keeps_the_import_unit_options(buffer_root: Path) -> None:
    assert IMPORT_OPTIONS_FILE in KEEP_ON_OUTPUT_RESET
    with CustodyBuffer.open(buffer_root) as buffer:
        pull(buffer, make_log("L1"))
        folder = buffer.output_dir("L1")
        (folder / IMPORT_OPTIONS_FILE).write_text('{"units": {}, "columns": {}}')
        (folder / "L1.csv.gz.partial").write_bytes(b"half a CSV")
    with CustodyBuffer.open(buffer_root) as buffer:
        assert buffer.last_recovery.stale_outputs_removed == ["L1"]
    assert sorted(p.name for p in folder.iterdir()) == [IMPORT_OPTIONS_FILE]


def test_output_folder_of_an_unknown_log_is_quarantined(buffer_root: Path) -> None:
    with CustodyBuffer.open(buffer_root) as buffer:
        pull(buffer, make_log("L1"))
    stray = buffer_root / "outputs" / "GHOST"
    stray.mkdir()
    (stray / "GHOST.csv.gz").write_bytes(b"x" * 100)
    with CustodyBuffer.open(buffer_root) as buffer:
        report = buffer.last_recovery
        [entry] = buffer.quarantine_entries()
    assert report.orphan_outputs_quarantined == ["outputs/GHOST"]
    assert (entry.stored_path / "outputs" / "GHOST.csv.gz").exists()
    assert not stray.exists()


def test_healthy_index_passes_the_check_untouched(
    buffer_root: Path, suit_log_bytes: bytes
) -> None:
    with CustodyBuffer.open(buffer_root) as buffer:
        _fill(buffer, suit_log_bytes)
    with CustodyBuffer.open(buffer_root) as buffer:
        report = buffer.last_recovery
    assert report.index_problem is None and not report.rebuilt
    assert not list(buffer_root.glob("custody.db.corrupt-*"))


def test_version_1_index_is_upgraded_in_place(buffer_root: Path) -> None:
    with CustodyBuffer.open(buffer_root) as buffer:
        pull(buffer, make_log("L1"))
    conn = sqlite3.connect(buffer_root / INDEX_FILE_NAME)
    conn.execute("ALTER TABLE logs DROP COLUMN evicted_at")
    conn.execute("ALTER TABLE logs DROP COLUMN rebuilt_at")
    conn.execute("DROP TABLE meta")
    conn.execute("PRAGMA user_version=1")
    conn.commit()
    conn.close()
    with CustodyBuffer.open(buffer_root, read_only=True) as reader:
        assert reader.get("L1").evicted_at is None
        assert reader.space_status().refusal is None
    with CustodyBuffer.open(buffer_root) as buffer:
        assert buffer.get("L1").state is LogState.PULLED
        assert not buffer.last_recovery.rebuilt


def _block_boundary_near_half(ride: bytes) -> int:
    """Return a byte offset of the ride that ends a block, near its middle."""
    reader = LogReader(io.BytesIO(ride), source="ride")
    for _block in reader.blocks():
        if reader.offset >= len(ride) // 2:
            return reader.offset
    raise AssertionError("ride has no block boundary past its middle")


def test_rebuilt_log_cut_at_a_block_boundary_is_completed_from_the_suit(
    buffer_root: Path, suit_log_bytes: bytes
) -> None:
    cut = _block_boundary_near_half(suit_log_bytes)
    log = suit_log("CUT", suit_log_bytes)
    with CustodyBuffer.open(buffer_root) as buffer:
        pull(buffer, log, upto=cut)
    (buffer_root / INDEX_FILE_NAME).unlink()

    with CustodyBuffer.open(buffer_root) as buffer:
        # The bytes held decode cleanly: they look complete.
        assert buffer.last_recovery.rebuilt_logs == {"CUT": "pulled"}
        with pytest.raises(LogConflictError):
            buffer.begin_log(SUIT, "CUT", cut - 1, log.sha256_hex)
        # The suit knows better: the log is longer, so the pull resumes.
        assert buffer.begin_log(SUIT, "CUT", log.size_bytes, log.sha256_hex) == cut
        assert buffer.get("CUT").state is LogState.PULLING
        pull(buffer, log)
        record = buffer.get("CUT")
    assert record.state is LogState.PULLED and record.sha256_hex == log.sha256_hex
    assert record.raw_path is not None
    assert record.raw_path.read_bytes() == suit_log_bytes
