"""State transitions of the custody buffer, one test per rule."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from custody_helpers import SUIT, make_log, pull, write_outputs

from edge_agent.custody import (
    MAX_PULL_ATTEMPTS,
    ChecksumMismatchError,
    CustodyBuffer,
    IncompleteLogError,
    InvalidTransitionError,
    LogConflictError,
    LogState,
    OffsetMismatchError,
    QuarantinedLogError,
    RetentionPolicy,
    UnknownLogError,
)


def _to_released(buffer: CustodyBuffer, log_id: str) -> None:
    buffer.mark_processed(log_id, write_outputs(buffer, log_id), {"samples": 3}, False)
    buffer.mark_uploaded(log_id, {"raw_csv": f"raw/{log_id}.csv.gz"})
    buffer.mark_released(log_id)


def test_begin_log_registers_pulling_at_offset_zero(buffer: CustodyBuffer) -> None:
    log = make_log("L1")
    offset = buffer.begin_log(SUIT, log.log_id, log.size_bytes, log.sha256_hex)
    record = buffer.get("L1")
    assert offset == 0
    assert record.state is LogState.PULLING
    assert record.suit_serial == SUIT
    assert record.raw_path is not None and record.raw_path.stat().st_size == 0


def test_begin_log_is_idempotent_and_returns_durable_offset(
    buffer: CustodyBuffer,
) -> None:
    log = make_log("L1")
    pull(buffer, log, upto=20_000)
    again = buffer.begin_log(SUIT, log.log_id, log.size_bytes, log.sha256_hex.upper())
    assert again == 20_000
    assert buffer.counts_by_state()[LogState.PULLING] == 1


def test_begin_log_of_complete_log_returns_its_size(buffer: CustodyBuffer) -> None:
    log = make_log("L1")
    pull(buffer, log)
    offset = buffer.begin_log(SUIT, log.log_id, log.size_bytes, log.sha256_hex)
    assert offset == log.size_bytes
    assert buffer.get("L1").state is LogState.PULLED


def test_begin_log_with_other_digest_is_a_conflict(buffer: CustodyBuffer) -> None:
    log = make_log("L1")
    buffer.begin_log(SUIT, log.log_id, log.size_bytes, log.sha256_hex)
    with pytest.raises(LogConflictError, match="L1"):
        buffer.begin_log(SUIT, log.log_id, log.size_bytes, "0" * 64)


@pytest.mark.parametrize(
    ("log_id", "size_bytes", "sha256_hex"),
    [
        ("../evil", 10, "a" * 64),
        ("", 10, "a" * 64),
        ("ok", -1, "a" * 64),
        ("ok", 10, "not-hex"),
    ],
)
def test_begin_log_rejects_bad_arguments(
    buffer: CustodyBuffer, log_id: str, size_bytes: int, sha256_hex: str
) -> None:
    with pytest.raises(ValueError):
        buffer.begin_log(SUIT, log_id, size_bytes, sha256_hex)
    assert buffer.logs() == []


def test_append_at_wrong_offset_is_refused(buffer: CustodyBuffer) -> None:
    log = make_log("L1")
    pull(buffer, log, upto=4096)
    with pytest.raises(OffsetMismatchError, match="expected offset 4096"):
        buffer.append_log_bytes("L1", 0, log.data[:10])
    with pytest.raises(OffsetMismatchError):
        buffer.append_log_bytes("L1", 4096, b"x" * log.size_bytes)
    assert buffer.get("L1").durable_offset == 4096


def test_append_to_unknown_log_raises(buffer: CustodyBuffer) -> None:
    with pytest.raises(UnknownLogError):
        buffer.append_log_bytes("nope", 0, b"abc")


def test_complete_log_marks_pulled_and_keeps_exact_bytes(
    buffer: CustodyBuffer,
) -> None:
    log = make_log("L1", 100_003)
    pull(buffer, log, chunk_bytes=4099)
    record = buffer.get("L1")
    assert record.state is LogState.PULLED
    assert record.durable_offset == log.size_bytes
    assert record.raw_path is not None
    assert record.raw_path.read_bytes() == log.data
    assert LogState.PULLED in record.state_times


def test_complete_before_every_byte_is_stored_raises(buffer: CustodyBuffer) -> None:
    log = make_log("L1")
    pull(buffer, log, upto=1000)
    with pytest.raises(IncompleteLogError, match="1000 of 50000"):
        buffer.complete_log("L1")
    assert buffer.get("L1").state is LogState.PULLING


def test_checksum_mismatch_quarantines_and_buffer_stays_usable(
    buffer: CustodyBuffer,
) -> None:
    log = make_log("L1")
    corrupted = bytearray(log.data)
    corrupted[12_345] ^= 0xFF
    buffer.begin_log(SUIT, "L1", log.size_bytes, log.sha256_hex)
    buffer.append_log_bytes("L1", 0, bytes(corrupted))

    with pytest.raises(ChecksumMismatchError) as caught:
        buffer.complete_log("L1")

    assert caught.value.expected_hex == log.sha256_hex
    record = buffer.get("L1")
    assert record.state is LogState.QUARANTINED
    assert record.error is not None and "SHA-256 mismatch" in record.error
    [entry] = buffer.quarantine_entries()
    assert entry.log_id == "L1"
    assert (entry.stored_path / "L1.bin").read_bytes() == bytes(corrupted)
    reason = json.loads((entry.stored_path / "reason.json").read_text())
    assert log.sha256_hex in reason["reason"]
    assert buffer.counts_by_state()[LogState.QUARANTINED] == 1

    other = make_log("L2")
    pull(buffer, other)
    assert buffer.get("L2").state is LogState.PULLED


def test_quarantined_pull_restarts_until_attempts_run_out(
    buffer: CustodyBuffer,
) -> None:
    log = make_log("L1")
    for attempt in range(1, MAX_PULL_ATTEMPTS + 1):
        assert buffer.begin_log(SUIT, "L1", log.size_bytes, log.sha256_hex) == 0
        assert buffer.get("L1").pull_attempts == attempt
        buffer.append_log_bytes("L1", 0, b"\0" * log.size_bytes)
        with pytest.raises(ChecksumMismatchError):
            buffer.complete_log("L1")
    with pytest.raises(QuarantinedLogError, match="3 pull"):
        buffer.begin_log(SUIT, "L1", log.size_bytes, log.sha256_hex)
    assert len(buffer.quarantine_entries()) == MAX_PULL_ATTEMPTS


def test_full_lifecycle_moves_through_every_state(buffer: CustodyBuffer) -> None:
    log = make_log("L1")
    pull(buffer, log)
    outputs = write_outputs(buffer, "L1")
    analytics = {"samples": 1234, "crash": {"detected": True}}

    processed = buffer.mark_processed("L1", outputs, analytics, True)
    assert processed.state is LogState.PROCESSED
    assert processed.outputs == outputs
    assert (
        processed.output_sha256["raw_csv"]
        == hashlib.sha256(outputs["raw_csv"].read_bytes()).hexdigest()
    )
    assert processed.analytics == analytics
    assert processed.crash_detected is True

    keys = {"raw_csv": "raw/r/s/2026/01/02/L1.csv.gz", "analytics": "x/L1.json"}
    uploaded = buffer.mark_uploaded("L1", keys)
    assert uploaded.state is LogState.UPLOADED
    assert uploaded.object_keys == keys
    assert buffer.last_upload_time() == uploaded.state_times[LogState.UPLOADED]

    assert buffer.mark_released("L1").state is LogState.RELEASED
    purged = buffer.purge("L1")

    assert purged.state is LogState.PURGED
    assert purged.raw_path is None
    assert purged.outputs == {}
    assert purged.object_keys == keys
    assert not outputs["raw_csv"].exists()
    assert not (buffer.root / "logs" / "L1.bin").exists()
    assert set(purged.state_times) == {
        LogState.PULLING,
        LogState.PULLED,
        LogState.PROCESSED,
        LogState.UPLOADED,
        LogState.RELEASED,
        LogState.PURGED,
    }


def test_purge_keeps_raw_bytes_when_policy_says_so(buffer_root: Path) -> None:
    log = make_log("L1")
    policy = RetentionPolicy(keep_raw_after_upload=True)
    with CustodyBuffer.open(buffer_root, retention=policy) as buffer:
        pull(buffer, log)
        _to_released(buffer, "L1")
        purged = buffer.purge("L1")
        assert purged.raw_path is not None
        assert purged.raw_path.read_bytes() == log.data
        assert not (buffer.root / "outputs" / "L1").exists()


def test_purge_released_purges_only_released_logs(buffer: CustodyBuffer) -> None:
    for log_id in ("L1", "L2"):
        pull(buffer, make_log(log_id))
    _to_released(buffer, "L1")
    assert buffer.purge_released() == ["L1"]
    assert buffer.get("L2").state is LogState.PULLED


@pytest.mark.parametrize("target", ["uploaded", "released", "purged", "processed"])
def test_skipping_a_state_is_refused(buffer: CustodyBuffer, target: str) -> None:
    pull(buffer, make_log("L1"))
    if target == "processed":
        buffer.mark_processed("L1", write_outputs(buffer, "L1"), {}, None)
    with pytest.raises(InvalidTransitionError, match="L1"):
        if target == "uploaded":
            buffer.mark_released("L1")
        elif target == "released":
            buffer.purge("L1")
        elif target == "purged":
            buffer.mark_uploaded("L1", {})
            buffer.purge("L1")
        else:
            buffer.mark_processed("L1", {}, {}, None)


def test_quarantine_after_upload_is_refused(buffer: CustodyBuffer) -> None:
    pull(buffer, make_log("L1"))
    buffer.mark_processed("L1", write_outputs(buffer, "L1"), {}, None)
    buffer.mark_uploaded("L1", {})
    with pytest.raises(InvalidTransitionError):
        buffer.quarantine("L1", "late")
    assert buffer.get("L1").state is LogState.UPLOADED


def test_mark_processed_with_missing_output_leaves_state(
    buffer: CustodyBuffer,
) -> None:
    pull(buffer, make_log("L1"))
    with pytest.raises(FileNotFoundError):
        buffer.mark_processed("L1", {"raw_csv": buffer.root / "nope.csv"}, {}, None)
    assert buffer.get("L1").state is LogState.PULLED


def test_quarantine_of_processed_log_keeps_raw_and_outputs(
    buffer: CustodyBuffer,
) -> None:
    log = make_log("L1")
    pull(buffer, log)
    outputs = write_outputs(buffer, "L1")
    csv_bytes = outputs["raw_csv"].read_bytes()
    buffer.mark_processed("L1", outputs, {}, False)

    entry = buffer.quarantine("L1", "decoder rejected block 7 at offset 4096")

    assert entry.reason == "decoder rejected block 7 at offset 4096"
    assert sorted(entry.files) == ["L1.bin", "outputs"]
    assert (entry.stored_path / "L1.bin").read_bytes() == log.data
    assert (entry.stored_path / "outputs" / "L1.csv.gz").read_bytes() == csv_bytes
    record = buffer.get("L1")
    assert record.state is LogState.QUARANTINED
    assert record.quarantine_path == entry.stored_path
    assert record.outputs == {}


def test_quarantine_of_external_file_copies_it(
    buffer: CustodyBuffer, tmp_path: Path
) -> None:
    archive = tmp_path / "export.csv"
    archive.write_text("Time,Ax\n0,zz\n")
    entry = buffer.quarantine(archive, "column Ax row 2: 'zz' is not a number")
    assert archive.exists()
    assert (entry.stored_path / "export.csv").read_text() == "Time,Ax\n0,zz\n"
    assert entry.log_id is None
    assert entry.original_path == str(archive.resolve())


def test_quarantine_of_file_inside_buffer_moves_it(buffer: CustodyBuffer) -> None:
    stray = buffer.output_dir("L9") / "bad.bin"
    stray.write_bytes(b"junk")
    entry = buffer.quarantine(stray, "unreadable")
    assert not stray.exists()
    assert (entry.stored_path / "bad.bin").read_bytes() == b"junk"
    assert entry.size_bytes == 4


def test_register_imported_enters_pulled_and_is_idempotent(
    buffer: CustodyBuffer, tmp_path: Path
) -> None:
    source = tmp_path / "ride.csv"
    source.write_text("Time,Ax,Ay,Az\n0,0,0,1\n")
    record = buffer.register_imported(source, SUIT, "IMP1", rider_id="rider-7")
    assert record.state is LogState.PULLED
    assert record.source == "import"
    assert record.rider_id == "rider-7"
    assert record.original_name == "ride.csv"
    assert record.raw_path is not None and record.raw_path.name == "IMP1.csv"
    assert record.sha256_hex == hashlib.sha256(source.read_bytes()).hexdigest()
    assert buffer.register_imported(source, SUIT, "IMP1") == record

    source.write_text("different")
    with pytest.raises(LogConflictError, match="IMP1"):
        buffer.register_imported(source, SUIT, "IMP1")


def test_assign_rider_and_queries(buffer: CustodyBuffer) -> None:
    for log_id in ("L1", "L2", "L3"):
        pull(buffer, make_log(log_id, 1000), upto=None if log_id != "L3" else 10)
    buffer.assign_rider("L1", "rider-1")
    assert buffer.get("L1").rider_id == "rider-1"
    assert [r.log_id for r in buffer.logs([LogState.PULLED])] == ["L1", "L2"]
    assert buffer.logs([]) == []
    counts = buffer.counts_by_state()
    assert counts[LogState.PULLED] == 2
    assert counts[LogState.PULLING] == 1
    assert counts[LogState.PURGED] == 0
    assert buffer.find("nope") is None
    assert buffer.disk_usage_bytes() >= 2010
