"""The custody buffer used through the transfer layer's LogSink protocol."""

from __future__ import annotations

import threading

from custody_helpers import SUIT, make_log

from edge_agent.custody import CustodyBuffer, LogState
from edge_agent.transfer.sink import LogSink


def _pull_through(sink: LogSink, log_id: str, data: bytes, sha256_hex: str) -> None:
    offset = sink.begin_log(SUIT, log_id, len(data), sha256_hex)
    while offset < len(data):
        piece = data[offset : offset + 32 * 1024]
        sink.append_log_bytes(log_id, offset, piece)
        offset += len(piece)
    sink.complete_log(log_id)


def test_buffer_is_a_log_sink_usable_from_worker_threads(
    buffer: CustodyBuffer,
) -> None:
    # The BLE puller calls the sink from worker threads, one log per thread.
    logs = [make_log(f"{index:032x}", 300_000) for index in range(4)]
    errors: list[BaseException] = []

    def worker(index: int) -> None:
        log = logs[index]
        try:
            _pull_through(buffer, log.log_id, log.data, log.sha256_hex)
        except BaseException as exc:  # reported to the main thread below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(logs))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert errors == []
    for log in logs:
        record = buffer.get(log.log_id)
        assert record.state is LogState.PULLED
        assert record.raw_path is not None
        assert record.raw_path.read_bytes() == log.data
