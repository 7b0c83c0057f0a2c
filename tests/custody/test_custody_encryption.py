"""Encryption at rest: nothing readable on disk, tampering and wrong keys caught."""

from __future__ import annotations

import gzip
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from custody_helpers import SUIT, make_log, pull, suit_log

from edge_agent.custody import (
    CustodyBuffer,
    EncryptedDataError,
    KeyFileError,
    LogState,
    WrongKeyError,
    generate_key_file,
    read_key_file,
)
from edge_agent.custody.crypto import FILE_HEADER, RECORD_HEADER, TAG_BYTES
from edge_agent.custody.index import INDEX_FILE_NAME

CSV_HEADER = b"t_s,t_utc,acc_x_mps2,acc_y_mps2,acc_z_mps2"
SUIT_MAGIC = b"SUITLOG"


def _record_positions(path: Path) -> list[tuple[int, int]]:
    """Return (file position, plaintext length) of every record."""
    data = path.read_bytes()
    position, found = FILE_HEADER.size, []
    while position < len(data):
        plain_len = RECORD_HEADER.unpack_from(data, position)[0]
        found.append((position, plain_len))
        position += RECORD_HEADER.size + plain_len + TAG_BYTES
    return found


def _write_processing_outputs(folder: Path, log_id: str) -> dict[str, Path]:
    csv = folder / f"{log_id}.csv.gz"
    with gzip.open(csv, "wb", compresslevel=1) as stream:
        stream.write(CSV_HEADER + b"\n" + b"0.000,0.1,0.2,9.81\n" * 500)
    analytics = folder / f"{log_id}.json"
    analytics.write_text(f'{{"log_id": "{log_id}", "max_speed_kmh": 123.4}}')
    return {"raw_csv": csv, "analytics": analytics}


def test_pulled_log_and_outputs_are_not_plaintext_on_disk(
    sealed_buffer: CustodyBuffer, buffer_root: Path, suit_log_bytes: bytes
) -> None:
    log = suit_log("L1", suit_log_bytes)
    pull(sealed_buffer, log, chunk_bytes=64 * 1024)
    with sealed_buffer.processing_dir("L1") as folder:
        outputs = _write_processing_outputs(folder, "L1")
        record = sealed_buffer.mark_processed(
            "L1", outputs, {"max_speed_kmh": 123.4}, False
        )

    raw = (buffer_root / "logs" / "L1.bin").read_bytes()
    assert SUIT_MAGIC not in raw
    assert suit_log_bytes[100:132] not in raw  # no stretch of the log either
    stored_csv = record.outputs["raw_csv"].read_bytes()
    assert b"\x1f\x8b" not in stored_csv[:64]  # not even the gzip magic
    assert b"max_speed_kmh" not in record.outputs["analytics"].read_bytes()
    assert not folder.exists()  # the plaintext scratch folder is gone
    with sqlite3.connect(buffer_root / INDEX_FILE_NAME) as conn:
        (stored,) = conn.execute("SELECT analytics_json FROM logs").fetchone()
    assert "max_speed_kmh" not in stored

    # Through the buffer everything reads back as it was.
    assert record.analytics == {"max_speed_kmh": 123.4}
    with sealed_buffer.readable_raw("L1") as plain:
        assert plain.read_bytes() == suit_log_bytes
    assert not plain.exists()
    with sealed_buffer.open_raw("L1") as stream:
        assert stream.read() == suit_log_bytes
    with sealed_buffer.readable_outputs("L1") as readable:
        with gzip.open(readable.outputs["raw_csv"]) as csv:
            assert csv.read().startswith(CSV_HEADER)
        assert readable.outputs["raw_csv"].name == "L1.csv.gz"
        assert b"123.4" in readable.outputs["analytics"].read_bytes()


def test_plain_csv_import_is_encrypted(
    sealed_buffer: CustodyBuffer, buffer_root: Path, tmp_path: Path
) -> None:
    source = tmp_path / "archive.csv"
    source.write_bytes(CSV_HEADER + b"\n" + b"0.0,1,2,3\n" * 100)
    record = sealed_buffer.register_imported(source, SUIT, "IMP1", rider_id="r1")
    assert record.raw_path is not None and record.raw_path.name == "IMP1.csv"
    assert CSV_HEADER not in record.raw_path.read_bytes()
    with sealed_buffer.readable_raw("IMP1") as plain:
        assert plain.read_bytes() == source.read_bytes()
        assert plain.suffix == ".csv"  # processing detects the kind by name
    # Importing the same file again is still idempotent.
    assert sealed_buffer.register_imported(source, SUIT, "IMP1").sha256_hex == (
        record.sha256_hex
    )


def test_wrong_key_fails_with_a_clear_error(
    buffer_root: Path, key_file: Path, tmp_path: Path, suit_log_bytes: bytes
) -> None:
    with CustodyBuffer.open(buffer_root, key_file=key_file) as buffer:
        pull(buffer, suit_log("L1", suit_log_bytes))
        with buffer.processing_dir("L1") as folder:
            outputs = _write_processing_outputs(folder, "L1")
            buffer.mark_processed("L1", outputs, {"max_speed_kmh": 99.0}, False)
    other = generate_key_file(tmp_path / "other.key")
    with CustodyBuffer.open(buffer_root, key_file=other) as buffer:
        with pytest.raises(WrongKeyError) as err, buffer.readable_raw("L1"):
            pass
        with pytest.raises(WrongKeyError), buffer.readable_outputs("L1"):
            pass
        # Queries still work; the sealed analytics just cannot be read.
        [record] = buffer.logs()
        assert record.state is LogState.PROCESSED and record.analytics is None
    message = str(err.value)
    assert str(buffer_root / "logs" / "L1.bin") in message
    assert f"key file {other}" in message and "key id" in message
    with (
        CustodyBuffer.open(buffer_root) as unkeyed,
        pytest.raises(WrongKeyError, match="no key is configured"),
    ):
        unkeyed.open_raw("L1")


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660])
def test_key_file_open_to_group_or_others_is_refused(
    key_file: Path, buffer_root: Path, mode: int
) -> None:
    os.chmod(key_file, mode)
    with pytest.raises(KeyFileError) as err:
        CustodyBuffer.open(buffer_root, key_file=key_file)
    assert str(key_file) in str(err.value)
    assert f"mode {mode:04o}" in str(err.value)


def test_key_file_content_is_checked(tmp_path: Path) -> None:
    bad = tmp_path / "bad.key"
    bad.write_bytes(b"too short")
    os.chmod(bad, 0o600)
    with pytest.raises(KeyFileError, match=r"bad.key: expected 32 raw bytes"):
        read_key_file(bad)
    raw = tmp_path / "raw.key"
    raw.write_bytes(bytes(range(32)))
    os.chmod(raw, 0o400)
    assert read_key_file(raw) == bytes(range(32))
    with pytest.raises(KeyFileError, match="not found"):
        read_key_file(tmp_path / "missing.key")
    with pytest.raises(KeyFileError, match="already exists"):
        generate_key_file(raw)


def test_tampered_record_is_detected(
    sealed_buffer: CustodyBuffer, buffer_root: Path, suit_log_bytes: bytes
) -> None:
    pull(sealed_buffer, suit_log("L1", suit_log_bytes))
    raw = buffer_root / "logs" / "L1.bin"
    position, plain_len = _record_positions(raw)[3]
    data = bytearray(raw.read_bytes())
    data[position + RECORD_HEADER.size + plain_len // 2] ^= 0x01
    raw.write_bytes(bytes(data))
    with (
        pytest.raises(EncryptedDataError, match="fails authentication") as err,
        sealed_buffer.readable_raw("L1"),
    ):
        pass
    assert f"record at byte {position}" in str(err.value)


def test_reordered_or_cut_records_are_detected(
    sealed_buffer: CustodyBuffer, buffer_root: Path, suit_log_bytes: bytes
) -> None:
    pull(sealed_buffer, suit_log("L1", suit_log_bytes))
    raw = buffer_root / "logs" / "L1.bin"
    original = raw.read_bytes()
    records = _record_positions(raw)
    (a, a_len), (b, b_len), (c, _c_len) = records[1], records[2], records[3]
    assert a_len == b_len  # same length, so only the AAD can tell them apart

    swapped = original[:a] + original[b:c] + original[a:b] + original[c:]
    raw.write_bytes(swapped)
    with pytest.raises(EncryptedDataError, match="fails authentication"):
        sealed_buffer.open_raw("L1").read()

    last_data_record = records[-2][0]  # records[-1] is the end record
    raw.write_bytes(original[:last_data_record])
    with pytest.raises(EncryptedDataError, match="without its end record"):
        sealed_buffer.open_raw("L1").read()


def test_tampering_during_a_pull_quarantines_it(
    sealed_buffer: CustodyBuffer, buffer_root: Path, suit_log_bytes: bytes
) -> None:
    log = suit_log("L1", suit_log_bytes)
    pull(sealed_buffer, log, upto=len(suit_log_bytes) // 2, chunk_bytes=64 * 1024)
    raw = buffer_root / "logs" / "L1.bin"
    data = bytearray(raw.read_bytes())
    data[FILE_HEADER.size + RECORD_HEADER.size + 10] ^= 0x80
    raw.write_bytes(bytes(data))
    with pytest.raises(EncryptedDataError):
        pull(sealed_buffer, log, chunk_bytes=64 * 1024)
    assert sealed_buffer.get("L1").state is LogState.QUARANTINED
    # The suit still has the log: the next pull starts over and succeeds.
    pull(sealed_buffer, log, chunk_bytes=64 * 1024)
    assert sealed_buffer.get("L1").state is LogState.PULLED


_KILL_MID_APPEND = textwrap.dedent(
    """
    import os, signal, sys
    from pathlib import Path
    import edge_agent.custody.intake as module
    from edge_agent.custody import CustodyBuffer

    root, key = Path(sys.argv[1]), Path(sys.argv[2])
    sha, size = sys.argv[3], int(sys.argv[4])
    data = Path(sys.argv[5]).read_bytes()
    buffer = CustodyBuffer.open(root, key_file=key)
    buffer.begin_log("SUIT-0001", "L1", size, sha)
    buffer.append_log_bytes("L1", 0, data[:100000])

    def die(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGKILL)

    module.update_log = die
    buffer.append_log_bytes("L1", 100000, data[100000:250000])
    """
)


def test_pull_resumes_after_a_kill_between_encrypted_write_and_commit(
    buffer_root: Path, key_file: Path, tmp_path: Path, suit_log_bytes: bytes
) -> None:
    log = suit_log("L1", suit_log_bytes)
    data_file = tmp_path / "log.bin"
    data_file.write_bytes(log.data)
    child = subprocess.run(
        [
            sys.executable,
            "-c",
            _KILL_MID_APPEND,
            str(buffer_root),
            str(key_file),
            log.sha256_hex,
            str(log.size_bytes),
            str(data_file),
        ],
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert child.returncode == -signal.SIGKILL, child.stderr.decode()
    raw = buffer_root / "logs" / "L1.bin"
    # A torn record as well, as if power failed inside the next write.
    with open(raw, "ab") as stream:
        stream.write(RECORD_HEADER.pack(4096, 0, b"\0" * 12) + b"\xaa" * 100)

    with CustodyBuffer.open(buffer_root, key_file=key_file) as buffer:
        assert buffer.last_recovery.truncated_bytes == {"L1": 150_000}
        assert buffer.get("L1").durable_offset == 100_000
        assert buffer.begin_log(SUIT, "L1", log.size_bytes, log.sha256_hex) == 100_000
        pull(buffer, log, chunk_bytes=64 * 1024)
        assert buffer.get("L1").state is LogState.PULLED
        with buffer.readable_raw("L1") as plain:
            assert plain.read_bytes() == suit_log_bytes


def test_crash_between_seal_and_commit_completes_on_restart(
    buffer_root: Path, key_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import edge_agent.custody.intake as intake

    class Crash(BaseException):
        pass

    log2 = make_log("L2", 200_000)
    with CustodyBuffer.open(buffer_root, key_file=key_file) as buffer:
        pull(buffer, log2, upto=log2.size_bytes - 1)

        real_update = intake.update_log

        def crash_on_pulled(*args: object, **kwargs: object) -> None:
            if kwargs.get("new_state") is LogState.PULLED:
                raise Crash
            real_update(*args, **kwargs)  # type: ignore[arg-type]

        monkeypatch.setattr(intake, "update_log", crash_on_pulled)
        with pytest.raises(Crash):
            pull(buffer, log2)
        monkeypatch.undo()
    with CustodyBuffer.open(buffer_root, key_file=key_file) as buffer:
        assert buffer.get("L2").state is LogState.PULLING
        assert buffer.begin_log(SUIT, "L2", log2.size_bytes, log2.sha256_hex) == (
            log2.size_bytes
        )
        buffer.complete_log("L2")
        with buffer.readable_raw("L2") as plain:
            assert plain.read_bytes() == log2.data


def test_plaintext_buffer_keeps_working_after_encryption_is_turned_on(
    buffer_root: Path, key_file: Path
) -> None:
    old, partial = make_log("OLD", 100_000), make_log("PART", 100_000)
    with CustodyBuffer.open(buffer_root) as buffer:
        pull(buffer, old)
        pull(buffer, partial, upto=40_000)
    with CustodyBuffer.open(buffer_root, key_file=key_file) as buffer:
        assert buffer.encrypted
        pull(buffer, partial)  # appended as plaintext: the file's own format
        new = make_log("NEW", 100_000)
        pull(buffer, new)
        for log in (old, partial, new):
            with buffer.readable_raw(log.log_id) as plain:
                assert plain.read_bytes() == log.data
    assert (buffer_root / "logs" / "OLD.bin").read_bytes() == old.data
    assert (buffer_root / "logs" / "NEW.bin").read_bytes() != new.data


def test_leftover_working_copies_are_removed_and_nothing_else(
    buffer_root: Path, key_file: Path, tmp_path: Path
) -> None:
    shared = tmp_path / "run"
    shared.mkdir()
    (shared / "other-service.pid").write_text("123")
    leftover = shared / "work" / "raw-L1-x1y2"
    leftover.mkdir(parents=True)
    (leftover / "L1.bin").write_bytes(b"SUITLOG\x1a plaintext of a crashed step")

    with CustodyBuffer.open(buffer_root, key_file=key_file, work_dir=shared) as b:
        assert b.last_recovery.work_files_removed == 1
    assert not leftover.exists()
    assert (shared / "other-service.pid").read_text() == "123"
