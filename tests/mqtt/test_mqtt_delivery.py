"""Events at QoS 1 through the outbox: broker restarts, client restarts, repeats."""

from __future__ import annotations

import json
from pathlib import Path

from mqtt_helpers import (
    WAIT_S,
    ChildGateway,
    ClientFactory,
    Observer,
    has_events,
    make_event,
    plain_config,
    unique_event_ids,
    wait_until,
)

from edge_agent.mqtt import InboundMessage, event_id_for
from tests.support.flaky_proxy import FlakyProxy
from tests.support.mosquitto import MosquittoBroker

EVENTS = "gateways/gw-1/events"


def test_events_are_delivered_and_marked_on_puback(
    broker: MosquittoBroker, make_client: ClientFactory
) -> None:
    observer = Observer(broker.port, [EVENTS])
    client = make_client(plain_config(broker.port))
    events = [make_event(number) for number in range(25)]
    for event in events:
        assert client.enqueue(event)

    observer.wait_for(has_events(25))
    assert client.wait_delivered(WAIT_S)
    observer.close()
    documents = observer.event_documents()
    assert [document["event_id"] for document in documents] == [
        event.event_id for event in events
    ]
    assert documents[0] == events[0].to_document()
    assert client.outbox.counts() == {"pending": 0, "delivered": 25, "refused": 0}
    assert client.stats.events_delivered == 25


def test_events_survive_a_broker_crash_and_a_lost_session(
    broker: MosquittoBroker, proxy: FlakyProxy, make_client: ClientFactory
) -> None:
    commands: list[InboundMessage] = []
    client = make_client(plain_config(proxy.port), on_message=commands.append)
    before = Observer(broker.port, [EVENTS])
    for number in range(10):
        client.enqueue(make_event(number))
    before.wait_for(has_events(10))
    assert client.wait_delivered(WAIT_S)
    before.close()

    # The broker dies (SIGKILL: its sessions and subscriptions are gone)
    # while the gateway keeps producing events.
    proxy.refuse(True)
    broker.stop(kill=True)
    for number in range(10, 20):
        client.enqueue(make_event(number))
    assert client.outbox.counts()["pending"] == 10

    broker.start()
    after = Observer(broker.port, [EVENTS])
    proxy.refuse(False)
    after.wait_for(has_events(10))
    assert client.wait_delivered(WAIT_S)
    received, _repeats = unique_event_ids(after)
    assert received == {make_event(number).event_id for number in range(10, 20)}
    assert client.outbox.counts() == {"pending": 0, "delivered": 20, "refused": 0}

    # The new broker has no session for the gateway: it subscribed again.
    command = {
        "schema": "gateway-command/1",
        "command_id": "3f1b8a52-0c2d-4c1e-9a55-2c0b3d1f9e10",
        "type": "config_change",
        "settings": {"ble.idle_poll_s": 20},
    }
    after.publish("gateways/gw-1/commands", json.dumps(command))
    wait_until(lambda: bool(commands), "command at the gateway")
    after.close()
    assert commands[0].document == command


def test_unacknowledged_events_are_sent_again_after_a_gateway_crash(
    broker: MosquittoBroker,
    proxy: FlakyProxy,
    make_client: ClientFactory,
    tmp_path: Path,
) -> None:
    outbox = tmp_path / "shared-outbox.db"
    observer = Observer(broker.port, [EVENTS])
    child = ChildGateway(plain_config(proxy.port), outbox, events=12, wait_for_go=True)
    try:
        child.wait_line("CONNECTED")
        # PUBLISH packets reach the broker, PUBACKs never come back.
        proxy.stall(60, "down")
        child.go()
        child.wait_line("ENQUEUED")
        observer.wait_for(has_events(12))
    finally:
        child.kill()
    proxy.unstall()
    proxy.reset_connections()

    # A new agent process on the same outbox: nothing was acknowledged, so
    # everything goes out again; the subscriber drops the repeats by id.
    client = make_client(plain_config(proxy.port), outbox)
    assert client.wait_delivered(WAIT_S)
    expected = {
        event_id_for("gw-1", "log_uploaded", f"child-{n:05d}") for n in range(12)
    }
    observer.wait_for(lambda messages: len(messages) >= 24)
    observer.close()
    received, repeats = unique_event_ids(observer)
    assert received == expected
    assert repeats == 12
    assert client.outbox.counts() == {"pending": 0, "delivered": 12, "refused": 0}


def test_events_enqueued_offline_survive_a_killed_gateway(
    broker: MosquittoBroker,
    proxy: FlakyProxy,
    make_client: ClientFactory,
    tmp_path: Path,
) -> None:
    outbox = tmp_path / "shared-outbox.db"
    proxy.refuse(True)
    child = ChildGateway(plain_config(proxy.port), outbox, events=15)
    try:
        child.wait_line("ENQUEUED")
    finally:
        child.kill()
    assert "CONNECTED" not in child.lines

    observer = Observer(broker.port, [EVENTS])
    proxy.refuse(False)
    client = make_client(plain_config(proxy.port), outbox)
    observer.wait_for(has_events(15))
    assert client.wait_delivered(WAIT_S)
    observer.close()
    received, _repeats = unique_event_ids(observer)
    assert len(received) == 15


def test_delivered_events_are_not_sent_again_after_restart(
    broker: MosquittoBroker, make_client: ClientFactory, tmp_path: Path
) -> None:
    outbox = tmp_path / "outbox.db"
    observer = Observer(broker.port, [EVENTS])
    first = make_client(plain_config(broker.port), outbox)
    for number in range(5):
        first.enqueue(make_event(number))
    assert first.wait_delivered(WAIT_S)
    first.stop()

    second = make_client(plain_config(broker.port), outbox)
    marker = make_event(999, prefix="marker")
    second.enqueue(marker)
    # Messages from one connection arrive in order: once the marker is
    # here, any resend of the first five would have arrived before it.
    observer.wait_for(
        lambda messages: any(
            marker.event_id.encode() in item.payload for item in messages
        )
    )
    observer.close()
    assert len(observer.event_documents()) == 6
