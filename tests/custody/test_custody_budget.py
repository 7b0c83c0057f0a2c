"""The disk budget: refuse new logs when full, evict only what is safe."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from custody_helpers import SUIT, drive, make_log, pull

from edge_agent.custody import (
    OUTPUT_RESERVE_RATIO,
    BufferFullError,
    CustodyBuffer,
    LogState,
    RetentionPolicy,
)

MIB = 1024 * 1024
LOG_BYTES = 1 * MIB
NEED_BYTES = int(LOG_BYTES * (1 + OUTPUT_RESERVE_RATIO))


def _reopen_with_room(root: Path, room_bytes: int, **kwargs: object) -> CustodyBuffer:
    """Reopen ``root`` with a budget leaving ``room_bytes`` free right now."""
    with CustodyBuffer.open(root, **kwargs) as probe:  # type: ignore[arg-type]
        space = probe.space_status()
    budget = space.used_bytes + space.reserved_bytes + room_bytes
    opened: CustodyBuffer = CustodyBuffer.open(
        root,
        budget_bytes=budget,
        **kwargs,  # type: ignore[arg-type]
    )
    return opened


def _files_of(buffer: CustodyBuffer, log_id: str) -> list[Path]:
    record = buffer.get(log_id)
    paths = [] if record.raw_path is None else [record.raw_path]
    return paths + list(record.outputs.values())


def test_new_log_is_refused_naming_used_and_budget_bytes(
    buffer_root: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with CustodyBuffer.open(buffer_root) as buffer:
        drive(buffer, make_log("L1", LOG_BYTES), "processed")
    new = make_log("L2", LOG_BYTES)

    with _reopen_with_room(buffer_root, NEED_BYTES - LOG_BYTES // 2) as buffer:
        fits, reason = buffer.can_accept(new.size_bytes, new.log_id)
        assert not fits and "buffer full" in reason
        with caplog.at_level(logging.WARNING), pytest.raises(BufferFullError) as err:
            buffer.begin_log(SUIT, new.log_id, new.size_bytes, new.sha256_hex)
        space = buffer.space_status()
        budget = buffer.budget_bytes
        assert buffer.find("L2") is None

    assert budget is not None
    assert err.value.budget_bytes == budget
    assert LOG_BYTES < err.value.used_bytes < budget
    assert f"{err.value.used_bytes} of {budget} bytes used" in str(err.value)
    assert f"log L2 needs {NEED_BYTES} bytes" in str(err.value)
    assert space.refusal == err.value.reason
    assert not (buffer_root / "logs" / "L2.bin").exists()
    assert [r.levelname for r in caplog.records if "refused" in r.message] == [
        "WARNING"
    ]


def test_logs_not_yet_in_object_storage_are_never_evicted(buffer_root: Path) -> None:
    with CustodyBuffer.open(buffer_root) as buffer:
        drive(buffer, make_log("PULLING", LOG_BYTES), "pulling")
        drive(buffer, make_log("PULLED", LOG_BYTES), "pulled")
        drive(buffer, make_log("CRASH", LOG_BYTES), "processed", crash=True)
        drive(buffer, make_log("PLAIN", LOG_BYTES), "processed")
        before = {
            log_id: [(p, p.read_bytes()) for p in _files_of(buffer, log_id)]
            for log_id in ("PULLING", "PULLED", "CRASH", "PLAIN")
        }
    new = make_log("NEW", LOG_BYTES)

    with _reopen_with_room(buffer_root, NEED_BYTES - 1) as buffer:
        with pytest.raises(BufferFullError, match="eviction can free only 0"):
            buffer.begin_log(SUIT, new.log_id, new.size_bytes, new.sha256_hex)
        for log_id, files in before.items():
            assert buffer.get(log_id).evicted_at is None
            for path, content in files:
                assert path.read_bytes() == content


def test_released_logs_are_evicted_oldest_first(buffer_root: Path) -> None:
    keep_raw = RetentionPolicy(keep_raw_after_upload=True)
    with CustodyBuffer.open(buffer_root, retention=keep_raw) as buffer:
        drive(buffer, make_log("OLD", LOG_BYTES), "released")
        drive(buffer, make_log("MID", LOG_BYTES), "purged")  # raw kept by policy
        drive(buffer, make_log("NEW", LOG_BYTES), "released")
    incoming = make_log("IN", LOG_BYTES)

    # Room for the new log only after freeing a bit more than one log.
    room = NEED_BYTES - LOG_BYTES - LOG_BYTES // 2
    with _reopen_with_room(buffer_root, room, retention=keep_raw) as buffer:
        assert buffer.can_accept(incoming.size_bytes)[0]
        offset = buffer.begin_log(
            SUIT, incoming.log_id, incoming.size_bytes, incoming.sha256_hex
        )
        old, mid, new = (buffer.get(i) for i in ("OLD", "MID", "NEW"))

    assert offset == 0
    assert old.state is LogState.PURGED and old.evicted_at is not None
    assert mid.state is LogState.PURGED and mid.evicted_at is not None
    assert old.raw_path is None and mid.raw_path is None
    assert not (buffer_root / "logs" / "OLD.bin").exists()
    assert not (buffer_root / "outputs" / "OLD").exists()
    assert not (buffer_root / "logs" / "MID.bin").exists()
    assert new.state is LogState.RELEASED and new.evicted_at is None
    assert new.raw_path is not None and new.raw_path.exists()


def test_crash_logs_are_evicted_after_upload_and_last(buffer_root: Path) -> None:
    with CustodyBuffer.open(buffer_root) as buffer:
        drive(buffer, make_log("CRASH", LOG_BYTES), "uploaded", crash=True)
        drive(buffer, make_log("PLAIN", LOG_BYTES), "uploaded")
    first, second = make_log("IN1", LOG_BYTES), make_log("IN2", LOG_BYTES // 4)

    with _reopen_with_room(buffer_root, NEED_BYTES - LOG_BYTES // 2) as buffer:
        buffer.begin_log(SUIT, first.log_id, first.size_bytes, first.sha256_hex)
        crash, plain = buffer.get("CRASH"), buffer.get("PLAIN")
        # The crash log is older, yet the plain one went first.
        assert plain.evicted_at is not None and plain.raw_path is None
        assert plain.state is LogState.UPLOADED  # the suit release still follows
        assert crash.evicted_at is None and crash.raw_path is not None

        pull(buffer, first, chunk_bytes=256 * 1024)
        buffer.begin_log(SUIT, second.log_id, second.size_bytes, second.sha256_hex)
        crash = buffer.get("CRASH")
        assert crash.evicted_at is not None and crash.raw_path is None
        assert buffer.get("IN1").raw_path is not None

        # Evicted logs still release and purge normally.
        buffer.mark_released("PLAIN")
        assert buffer.purge("PLAIN").state is LogState.PURGED


def test_intake_resumes_when_uploads_free_room(
    buffer_root: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with CustodyBuffer.open(buffer_root) as buffer:
        drive(buffer, make_log("L1", LOG_BYTES), "processed")
    new = make_log("L2", LOG_BYTES)

    with _reopen_with_room(buffer_root, NEED_BYTES - LOG_BYTES // 2) as buffer:
        caplog.set_level(logging.INFO, logger="edge_agent.custody")
        for _ in range(2):
            with pytest.raises(BufferFullError):
                buffer.begin_log(SUIT, new.log_id, new.size_bytes, new.sha256_hex)
        assert buffer.space_status().refusal is not None

        buffer.mark_uploaded("L1", {"raw_csv": "raw/L1"})
        assert buffer.begin_log(SUIT, new.log_id, new.size_bytes, new.sha256_hex) == 0
        assert buffer.space_status().refusal is None
        assert buffer.get("L1").evicted_at is not None

    lines = [
        (r.levelname, r.getMessage())
        for r in caplog.records
        if "new logs" in r.getMessage() or "intake resumed" in r.getMessage()
    ]
    assert [level for level, _ in lines] == ["WARNING", "INFO", "INFO"]
    assert "still refusing" in lines[1][1]
    assert "intake resumed" in lines[2][1]


def test_partial_pull_resumes_while_the_buffer_is_full(buffer_root: Path) -> None:
    log = make_log("L1", LOG_BYTES)
    with CustodyBuffer.open(buffer_root) as buffer:
        pull(buffer, log, upto=LOG_BYTES // 4)
    with _reopen_with_room(buffer_root, 0) as buffer:
        other = make_log("L2", LOG_BYTES // 10)
        with pytest.raises(BufferFullError):
            buffer.begin_log(SUIT, other.log_id, other.size_bytes, other.sha256_hex)
        # The pull in progress already holds its reservation.
        assert pull(buffer, log) == LOG_BYTES
        assert buffer.get("L1").state is LogState.PULLED


def test_log_larger_than_the_whole_budget_says_so(buffer_root: Path) -> None:
    with CustodyBuffer.open(buffer_root, budget_bytes=LOG_BYTES) as buffer:
        fits, reason = buffer.can_accept(LOG_BYTES, "BIG")
        assert not fits
        assert "more than the whole buffer budget" in reason
        assert "raise [custody] budget_bytes" in reason


def test_quarantine_counts_and_is_named_in_the_refusal(buffer_root: Path) -> None:
    with CustodyBuffer.open(buffer_root) as buffer:
        drive(buffer, make_log("BAD", LOG_BYTES), "pulled")
        buffer.quarantine("BAD", "decoder: bad magic at offset 0")
    with _reopen_with_room(buffer_root, NEED_BYTES - LOG_BYTES // 2) as buffer:
        space = buffer.space_status()
        fits, reason = buffer.can_accept(LOG_BYTES, "L2")
    assert space.quarantine_bytes >= LOG_BYTES
    assert space.evictable_bytes == 0
    assert not fits
    assert f"{space.quarantine_bytes} in quarantine" in reason


def test_refusal_is_visible_to_a_read_only_status_reader(buffer_root: Path) -> None:
    with CustodyBuffer.open(buffer_root) as buffer:
        drive(buffer, make_log("L1", LOG_BYTES), "pulled")
    new = make_log("L2", LOG_BYTES)
    with _reopen_with_room(buffer_root, LOG_BYTES // 2) as writer:
        with pytest.raises(BufferFullError):
            writer.begin_log(SUIT, new.log_id, new.size_bytes, new.sha256_hex)
        with CustodyBuffer.open(buffer_root, read_only=True) as reader:
            refusal = reader.space_status().refusal
    assert refusal is not None and "log L2 needs" in refusal


def test_no_budget_accepts_everything(buffer: CustodyBuffer) -> None:
    fits, reason = buffer.can_accept(10**15)
    assert fits and reason == "no disk budget configured"
    assert buffer.space_status().free_bytes is None
