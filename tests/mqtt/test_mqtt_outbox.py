"""The durable outbox on real SQLite: commits, order, refusals, pruning."""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from pathlib import Path

import pytest
from mqtt_helpers import make_event

from edge_agent.mqtt import EventDeduplicator, MqttPayloadError, Outbox, OutboxError
from edge_agent.mqtt.outbox import MAX_REFUSALS

TOPIC = "gateways/gw-1/events"


def test_outbox_enqueue_is_durable_and_ordered(tmp_path: Path) -> None:
    path = tmp_path / "outbox.db"
    with Outbox.open(path) as outbox:
        for number in range(5):
            assert outbox.enqueue(make_event(number), TOPIC)

    # A fresh process would see exactly this: the rows, in enqueue order.
    with Outbox.open(path) as reopened:
        pending = reopened.pending_after(0, 100)
        assert [entry.event_id for entry in pending] == [
            make_event(number).event_id for number in range(5)
        ]
        assert reopened.counts() == {"pending": 5, "delivered": 0, "refused": 0}
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()


def test_outbox_keeps_one_row_per_event_id(tmp_path: Path) -> None:
    with Outbox.open(tmp_path / "outbox.db") as outbox:
        event = make_event(1)
        assert outbox.enqueue(event, TOPIC)
        # The agent re-enqueues after a crash: same stable id, new time.
        again = replace(event, time_utc="2030-01-01T00:00:00+00:00")
        assert not outbox.enqueue(again, TOPIC)
        (entry,) = outbox.entries()
        assert entry.payload == event.to_payload()


def test_outbox_pages_after_a_cursor_and_marks_delivered(tmp_path: Path) -> None:
    with Outbox.open(tmp_path / "outbox.db") as outbox:
        for number in range(6):
            outbox.enqueue(make_event(number), TOPIC)
        first = outbox.pending_after(0, 4)
        second = outbox.pending_after(first[-1].seq, 4)
        assert len(first) == 4 and len(second) == 2
        assert outbox.mark_delivered([entry.event_id for entry in first]) == 4
        # A repeated PUBACK (resent event) changes nothing.
        assert outbox.mark_delivered([first[0].event_id]) == 0
        assert [entry.event_id for entry in outbox.pending_after(0, 10)] == [
            entry.event_id for entry in second
        ]


def test_refused_event_is_set_aside_after_repeated_refusals(tmp_path: Path) -> None:
    with Outbox.open(tmp_path / "outbox.db") as outbox:
        event = make_event(1)
        outbox.enqueue(event, TOPIC)
        outcomes = [
            outbox.record_refusal(event.event_id, "Not authorized (135)")
            for _ in range(MAX_REFUSALS)
        ]
        assert outcomes == [False] * (MAX_REFUSALS - 1) + [True]
        (entry,) = outbox.entries("refused")
        assert entry.last_error == "Not authorized (135)"
        assert outbox.pending_after(0, 10) == []
        assert outbox.retry_refused() == 1
        assert outbox.counts()["pending"] == 1


def test_prune_keeps_pending_and_newest_delivered(tmp_path: Path) -> None:
    with Outbox.open(tmp_path / "outbox.db") as outbox:
        events = [make_event(number) for number in range(10)]
        for event in events:
            outbox.enqueue(event, TOPIC)
        outbox.mark_delivered(event.event_id for event in events[:8])
        assert outbox.prune_delivered(keep_rows=3) == 5
        remaining = [entry.event_id for entry in outbox.entries()]
        assert remaining == [event.event_id for event in events[5:]]
        # New rows never reuse a pruned sequence number.
        outbox.enqueue(make_event(99), TOPIC)
        assert outbox.entries()[-1].seq > max(
            entry.seq for entry in outbox.entries()[:-1]
        )


def test_bad_event_is_refused_before_storage(tmp_path: Path) -> None:
    with Outbox.open(tmp_path / "outbox.db") as outbox:
        bad = replace(make_event(1), sha256="not-a-digest")
        with pytest.raises(
            MqttPayloadError, match=r"field 'sha256'.*64 lower-case hex"
        ):
            outbox.enqueue(bad, TOPIC)
        no_keys = replace(make_event(2), object_keys={"raw_csv": ""})
        with pytest.raises(MqttPayloadError, match=r"'object_keys.raw_csv'"):
            outbox.enqueue(no_keys, TOPIC)
        assert outbox.entries() == []


def test_outbox_file_that_is_not_a_database_is_named(tmp_path: Path) -> None:
    path = tmp_path / "outbox.db"
    path.write_bytes(b"this is not SQLite" * 100)
    with pytest.raises(OutboxError, match=f"outbox {path}: cannot open"):
        Outbox.open(path)


def test_deduplicator_drops_repeats_and_stays_bounded() -> None:
    dedup = EventDeduplicator(capacity=3)
    ids = ["a", "b", "a", "c", "d", "a"]
    assert [dedup.first_time(event_id) for event_id in ids] == [
        True,
        True,
        False,
        True,
        True,
        False,
    ]
    assert dedup.repeats == 2
    assert len(dedup) == 3
    # "b" was the least recently seen and fell out of the window.
    assert dedup.first_time("b")
