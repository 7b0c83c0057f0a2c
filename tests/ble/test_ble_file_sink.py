"""FileLogSink: the reference LogSink used by the transfer tests and benchmark."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from edge_agent.transfer import FileLogSink, SinkError

pytestmark = pytest.mark.timeout(30)

LOG_ID = "00112233445566778899aabbccddeeff"
DATA = bytes(range(256)) * 40


def _begin(sink: FileLogSink, data: bytes = DATA) -> int:
    return sink.begin_log("SN1", LOG_ID, len(data), hashlib.sha256(data).hexdigest())


def test_resume_offset_survives_a_new_sink_object(tmp_path: Path) -> None:
    sink = FileLogSink(tmp_path)
    assert _begin(sink) == 0
    sink.append_log_bytes(LOG_ID, 0, DATA[:1000])

    reopened = FileLogSink(tmp_path)
    assert _begin(reopened) == 1000
    reopened.append_log_bytes(LOG_ID, 1000, DATA[1000:])
    reopened.complete_log(LOG_ID)
    assert reopened.read_log(LOG_ID) == DATA
    assert _begin(reopened) == len(DATA)


def test_append_must_start_at_the_durable_end(tmp_path: Path) -> None:
    sink = FileLogSink(tmp_path)
    _begin(sink)
    sink.append_log_bytes(LOG_ID, 0, DATA[:10])
    with pytest.raises(SinkError, match="offset 5, expected the durable end 10"):
        sink.append_log_bytes(LOG_ID, 5, DATA[5:20])


def test_completion_refuses_wrong_bytes(tmp_path: Path) -> None:
    sink = FileLogSink(tmp_path)
    _begin(sink)
    sink.append_log_bytes(LOG_ID, 0, bytes(len(DATA)))
    with pytest.raises(SinkError, match="sha256"):
        sink.complete_log(LOG_ID)
    assert not sink.log_path(LOG_ID).exists()


def test_begin_with_another_size_is_a_conflict(tmp_path: Path) -> None:
    sink = FileLogSink(tmp_path)
    _begin(sink)
    with pytest.raises(SinkError, match="registered with size"):
        _begin(sink, DATA[:-1])
