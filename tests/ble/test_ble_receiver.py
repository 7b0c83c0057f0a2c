"""StreamReceiver: ordering, gap detection, re-requests, never a gap in order."""

from __future__ import annotations

import pytest

from edge_agent.transfer.receiver import StreamReceiver
from firmware_bridge.ble.protocol import (
    MalformedMessageError,
    ReadLogReply,
    encode_chunk,
)

pytestmark = pytest.mark.timeout(30)

LOG_ID = "00112233445566778899aabbccddeeff"
DATA = bytes(range(256)) * 4  # 1024 bytes
PAYLOAD = 100


def _receiver(offset: int = 0) -> StreamReceiver:
    length = len(DATA) - offset
    count = -(-length // PAYLOAD)
    return StreamReceiver(ReadLogReply(1, LOG_ID, offset, length, PAYLOAD, count, 16))


def _frame(index: int, offset: int = 0) -> bytes:
    start = offset + index * PAYLOAD
    return encode_chunk(index, start, DATA[start : start + PAYLOAD])


def test_in_order_stream_completes_without_requests() -> None:
    receiver = _receiver()
    received = b""
    for index in range(receiver.chunk_count):
        assert receiver.feed(_frame(index)) == []
        received += receiver.take_in_order()
    assert receiver.complete
    assert received == DATA


def test_gap_is_requested_and_held_back_until_filled() -> None:
    receiver = _receiver()
    receiver.feed(_frame(0))
    assert receiver.take_in_order() == DATA[:100]
    assert receiver.feed(_frame(3)) == [(1, 2)]
    assert receiver.feed(_frame(4)) == []  # already requested
    assert receiver.take_in_order() == b""  # nothing past the gap
    assert receiver.in_order_end == 100
    receiver.feed(_frame(2))
    assert receiver.take_in_order() == b""
    receiver.feed(_frame(1))
    assert receiver.take_in_order() == DATA[100:500]
    assert receiver.expected == 5


def test_tail_loss_is_requested_on_stream_end() -> None:
    receiver = _receiver()
    for index in range(receiver.chunk_count - 2):
        receiver.feed(_frame(index))
    assert receiver.on_stream_end() == [(receiver.chunk_count - 2, 2)]
    assert not receiver.complete


def test_idle_re_requests_even_what_was_already_requested() -> None:
    receiver = _receiver()
    receiver.feed(_frame(0))
    receiver.feed(_frame(2))
    assert receiver.on_idle() == [(1, 1)]
    assert receiver.on_idle() == [(1, 1)]


def test_duplicates_and_bad_crc_are_counted_not_stored() -> None:
    receiver = _receiver()
    receiver.feed(_frame(0))
    receiver.feed(_frame(0))
    bad = bytearray(_frame(1))
    bad[10] ^= 0xFF
    assert receiver.feed(bytes(bad)) == []
    assert (receiver.duplicates, receiver.crc_errors) == (1, 1)
    assert receiver.feed(_frame(2)) == [(1, 1)]
    assert receiver.take_in_order() == DATA[:100]


def test_resumed_stream_checks_offsets() -> None:
    receiver = _receiver(offset=300)
    receiver.feed(_frame(0, offset=300))
    assert receiver.take_in_order() == DATA[300:400]
    with pytest.raises(MalformedMessageError) as caught:
        receiver.feed(encode_chunk(1, 999, DATA[400:500]))
    assert caught.value.field == "offset"


def test_chunk_beyond_the_stream_is_a_protocol_error() -> None:
    receiver = _receiver()
    with pytest.raises(MalformedMessageError) as caught:
        receiver.feed(encode_chunk(receiver.chunk_count, 0, b"x"))
    assert caught.value.field == "seq"


def test_short_last_chunk_size_is_checked() -> None:
    receiver = _receiver()
    last = receiver.chunk_count - 1
    with pytest.raises(MalformedMessageError) as caught:
        receiver.feed(encode_chunk(last, last * PAYLOAD, bytes(PAYLOAD)))
    assert caught.value.field == "payload"
