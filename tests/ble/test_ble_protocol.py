"""Protocol messages: round trips, malformed input, and random-bytes robustness."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import random
import struct

import pytest

from firmware_bridge.ble.protocol import (
    Abort,
    AbortReply,
    Ack,
    ChecksumError,
    Enroll,
    EnrollReply,
    ErrorReply,
    ListLogs,
    ListLogsReply,
    LogEntryRecord,
    MalformedMessageError,
    Nack,
    Opcode,
    ProtocolError,
    ReadLog,
    ReadLogReply,
    ReleaseLog,
    ReleaseLogReply,
    ReleaseReceipt,
    ReplyReassembler,
    ResultCode,
    SegmentationError,
    StatusRecord,
    StreamEnd,
    UnknownOpcodeError,
    decode_chunk,
    decode_command,
    decode_reply,
    derive_release_key,
    encode_chunk,
    segment_message,
    unwrap_seq,
    upload_digest,
)

pytestmark = pytest.mark.timeout(60)

LOG_ID = "00112233445566778899aabbccddeeff"
SHA = "ab" * 32
KEY = bytes(range(32))
DIGEST = upload_digest({"raw_csv": "raw/r/s/2026/01/02/x.csv.gz"}, {"raw_csv": SHA})


@pytest.mark.parametrize(
    "command",
    [
        ListLogs(1, 3, 64),
        ReadLog(2, LOG_ID, 1000, 0, 236, 128),
        Ack(3, 65535),
        Nack(4, 7, 12),
        ReleaseLog(5, LOG_ID, SHA),
        ReleaseLog(5, LOG_ID, SHA, ReleaseReceipt.sign(KEY, LOG_ID, SHA, DIGEST)),
        Abort(6),
        Enroll(7, bytes(range(100, 132))),
    ],
)
def test_command_round_trip(command: object) -> None:
    assert decode_command(command.encode()) == command  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "reply",
    [
        ListLogsReply(1, 2, 0, (LogEntryRecord(LOG_ID, 5, SHA),) * 2),
        ReadLogReply(2, LOG_ID, 10, 1000, 236, 5, 64),
        ReleaseLogReply(3),
        AbortReply(4),
        ErrorReply(Opcode.RELEASE_LOG, 5, ResultCode.SHA_MISMATCH),
        StreamEnd(LOG_ID, 99),
        EnrollReply(9, bytes(32)),
        ErrorReply(Opcode.RELEASE_LOG, 10, ResultCode.BAD_RECEIPT),
        ErrorReply(Opcode.ENROLL, 11, ResultCode.NOT_PAIRING),
    ],
)
def test_reply_round_trip(reply: object) -> None:
    assert decode_reply(reply.encode()) == reply  # type: ignore[attr-defined]


def test_status_round_trip_and_unknown_battery() -> None:
    record = StatusRecord(1, None, True, 3)
    assert StatusRecord.decode(record.encode()) == record


def test_status_v2_carries_pairing_mode_and_bond_requirement() -> None:
    record = StatusRecord(2, 80, True, 3, pairing_mode=True, bond_required=True)
    assert record.encode() == bytes.fromhex("0250010300" + "03")
    assert StatusRecord.decode(record.encode()) == record
    assert len(StatusRecord(1, 80, True, 3).encode()) == 5
    later = StatusRecord.decode(StatusRecord(3, 80, False, 0).encode() + b"\x09")
    assert later.protocol_version == 3
    with pytest.raises(MalformedMessageError) as caught:
        StatusRecord(1, 80, True, 3, pairing_mode=True).encode()
    assert caught.value.field == "security"
    with pytest.raises(MalformedMessageError) as caught:
        StatusRecord.decode(bytes.fromhex("025001030004"))
    assert caught.value.field == "security"
    with pytest.raises(MalformedMessageError) as caught:
        StatusRecord.decode(bytes.fromhex("0250010300"))
    assert caught.value.field == "length"


def test_receipt_binds_log_id_sha256_and_upload_under_the_key() -> None:
    receipt = ReleaseReceipt.sign(KEY, LOG_ID, SHA, DIGEST)
    assert receipt.verify(KEY, LOG_ID, SHA)
    assert not receipt.verify(bytes(32), LOG_ID, SHA)
    assert not receipt.verify(KEY, "ff" * 16, SHA)
    assert not receipt.verify(KEY, LOG_ID, "cd" * 32)
    other = upload_digest({"raw_csv": "raw/r/s/2026/01/02/y.csv.gz"}, {"raw_csv": SHA})
    assert not ReleaseReceipt(other, receipt.mac).verify(KEY, LOG_ID, SHA)
    wire = ReleaseLog(1, LOG_ID, SHA, receipt).encode()
    assert len(wire) == 114
    assert decode_command(wire) == ReleaseLog(1, LOG_ID, SHA, receipt)


def test_upload_digest_is_order_free_and_checks_its_fields() -> None:
    keys = {"raw_csv": "raw/a.csv.gz", "analytics": "analytics/a.json"}
    shas = {"raw_csv": SHA, "analytics": "cd" * 32}
    reordered = dict(reversed(list(keys.items())))
    assert upload_digest(keys, shas) == upload_digest(reordered, shas)
    assert upload_digest(keys, shas) != upload_digest(keys, {"raw_csv": SHA})
    with pytest.raises(ValueError, match="no committed object key"):
        upload_digest({}, shas)
    with pytest.raises(ValueError, match="output 'raw_csv'"):
        upload_digest(keys, {"raw_csv": "not-hex"})


def test_release_key_needs_both_nonces() -> None:
    key = derive_release_key(bytes(32), bytes(range(32)))
    assert len(key) == 32
    assert key != derive_release_key(bytes(range(32)), bytes(32))
    with pytest.raises(MalformedMessageError) as caught:
        derive_release_key(bytes(31), bytes(32))
    assert caught.value.field == "gateway_nonce"


@pytest.mark.parametrize(
    ("data", "error", "field"),
    [
        (b"", MalformedMessageError, "opcode"),
        (b"\x01", MalformedMessageError, "token"),
        (b"\x09\x00", UnknownOpcodeError, "opcode"),
        (b"\x01\x00\x00\x00", MalformedMessageError, "length"),
        (b"\x01\x00\x00\x00\x00", MalformedMessageError, "max_entries"),
        (
            ReadLog(1, LOG_ID, 0, 0, 236, 64).encode()[:-2] + b"\x00\x00",
            MalformedMessageError,
            "window_chunks",
        ),
        (
            ReadLog(1, LOG_ID, 0, 0, 236, 64).encode()[:26] + b"\x00\x00\x40\x00",
            MalformedMessageError,
            "max_payload_bytes",
        ),
        (Nack(1, 0, 1).encode()[:4] + b"\x00\x00", MalformedMessageError, "count"),
        (ReleaseLog(1, LOG_ID, SHA).encode()[:-1], MalformedMessageError, "length"),
        (
            ReleaseLog(1, LOG_ID, SHA).encode() + bytes(63),
            MalformedMessageError,
            "length",
        ),
        (Enroll(1, bytes(32)).encode()[:-1], MalformedMessageError, "length"),
    ],
)
def test_malformed_command_names_the_field(
    data: bytes, error: type[ProtocolError], field: str
) -> None:
    with pytest.raises(error) as caught:
        decode_command(data)
    assert caught.value.field == field
    assert field in str(caught.value)


def test_malformed_reply_names_the_field() -> None:
    bad_count = bytearray(ReadLogReply(2, LOG_ID, 0, 1000, 236, 5, 64).encode())
    bad_count[29] = 6
    with pytest.raises(MalformedMessageError) as caught:
        decode_reply(bytes(bad_count))
    assert caught.value.field == "chunk_count"
    assert "expected ceil(length / payload) = 5, found 6" in str(caught.value)

    with pytest.raises(MalformedMessageError) as caught:
        decode_reply(b"\x81\x01\x00\x01\x00\x00\x00\x02")
    assert caught.value.field == "length"

    with pytest.raises(MalformedMessageError) as caught:
        decode_reply(b"\x85\x01\x2a")
    assert caught.value.field == "result"

    with pytest.raises(UnknownOpcodeError) as caught:
        decode_reply(b"\x83\x01\x00")
    assert caught.value.field == "opcode"


def test_malformed_status_names_the_field() -> None:
    with pytest.raises(MalformedMessageError) as caught:
        StatusRecord.decode(b"\x01\x65\x00\x00\x00")
    assert caught.value.field == "battery_pct"
    with pytest.raises(MalformedMessageError) as caught:
        StatusRecord.decode(b"\x01\x10\x02\x00\x00")
    assert caught.value.field == "flags"
    with pytest.raises(MalformedMessageError) as caught:
        StatusRecord.decode(b"\x01\x10\x00\x00")
    assert caught.value.field == "length"


def test_chunk_round_trip_and_crc_error() -> None:
    frame = encode_chunk(70000, 123456, b"payload")
    chunk = decode_chunk(frame)
    assert (chunk.seq, chunk.offset, chunk.payload) == (
        70000 % 65536,
        123456,
        b"payload",
    )

    corrupted = bytearray(frame)
    corrupted[8] ^= 0x01
    with pytest.raises(ChecksumError) as caught:
        decode_chunk(bytes(corrupted))
    assert caught.value.field == "crc"

    with pytest.raises(MalformedMessageError) as short:
        decode_chunk(frame[:8])
    assert short.value.field == "length"


def test_unwrap_seq_crosses_the_16_bit_boundary() -> None:
    assert unwrap_seq(2, 65534) == 65538
    assert unwrap_seq(65535, 65537) == 65535
    assert unwrap_seq(10, 10) == 10


def test_segments_reassemble_at_default_mtu() -> None:
    message = ListLogsReply(1, 3, 0, (LogEntryRecord(LOG_ID, 9, SHA),) * 3).encode()
    segments = segment_message(message, 23)
    assert all(len(segment) <= 20 for segment in segments)
    reassembler = ReplyReassembler()
    results = [reassembler.feed(segment) for segment in segments]
    assert results[:-1] == [None] * (len(segments) - 1)
    assert results[-1] == message


def test_segment_loss_is_detected() -> None:
    segments = segment_message(bytes(100), 23)
    reassembler = ReplyReassembler()
    reassembler.feed(segments[0])
    with pytest.raises(SegmentationError) as caught:
        reassembler.feed(segments[2])
    assert caught.value.field == "counter"
    with pytest.raises(SegmentationError) as orphan:
        reassembler.feed(segments[3])
    assert orphan.value.field == "flags"


def test_parsers_raise_only_protocol_errors_on_random_bytes() -> None:
    rng = random.Random(20240611)
    parsers = [decode_command, decode_reply, decode_chunk, StatusRecord.decode]
    opcodes = [0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x81, 0x82, 0x85, 0x86, 0xC0]
    for round_index in range(20000):
        length = rng.choice([0, 1, 2, 3, 5, 8, 9, 23, 30, 35, 50, rng.randrange(300)])
        data = bytearray(rng.randbytes(length))
        if data and round_index % 2:
            data[0] = rng.choice(opcodes)
        for parser in parsers:
            with contextlib.suppress(ProtocolError):
                parser(bytes(data))
    reassembler = ReplyReassembler()
    for _ in range(5000):
        with contextlib.suppress(ProtocolError):
            reassembler.feed(rng.randbytes(rng.randrange(30)))


def test_receipt_test_vector_of_the_protocol_document() -> None:
    gateway_nonce, suit_nonce = bytes(range(32)), bytes(range(32, 64))
    objects = {
        "analytics": f"analytics/rider-1/SN000123/{LOG_ID}.json",
        "raw_csv": f"raw/rider-1/SN000123/2026/01/02/{LOG_ID}.csv.gz",
    }
    outputs = {"analytics": "11" * 32, "raw_csv": "22" * 32}

    # The document's description, written out with hashlib/hmac only.
    key = hmac.digest(b"suit-release-key/2", gateway_nonce + suit_nonce, "sha256")
    manifest = hashlib.sha256(b"suit-upload/2")
    for name in sorted(objects):
        manifest.update(b"K" + struct.pack("<H", len(name)) + name.encode())
        manifest.update(struct.pack("<H", len(objects[name])) + objects[name].encode())
    for name in sorted(outputs):
        manifest.update(b"S" + struct.pack("<H", len(name)) + name.encode())
        manifest.update(bytes.fromhex(outputs[name]))
    message = b"suit-release/2" + bytes.fromhex(LOG_ID) + bytes.fromhex(SHA)
    mac = hmac.digest(key, message + manifest.digest(), "sha256")

    assert derive_release_key(gateway_nonce, suit_nonce) == key
    assert upload_digest(objects, outputs) == manifest.digest()
    assert ReleaseReceipt.sign(key, LOG_ID, SHA, manifest.digest()).mac == mac
    assert key.hex().startswith("5462f9c5317d5b3d")
    assert manifest.hexdigest().startswith("52b1f36f479d91eb")
    assert mac.hex().startswith("4477a46c88514e51")
