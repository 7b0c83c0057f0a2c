"""One reconnect loop, however many disconnects; backoff with jitter."""

from __future__ import annotations

import random
import socket
import threading
import time

import pytest
from mqtt_helpers import (
    WAIT_S,
    ClientFactory,
    Observer,
    has_events,
    make_event,
    plain_config,
)

from edge_agent.mqtt import Backoff, BrokerUnavailableError, GatewayMqttClient
from tests.support.flaky_proxy import FlakyProxy
from tests.support.mosquitto import MosquittoBroker

STORM_THREADS = 16
STORM_CALLS = 100
# Mosquitto's log line when a second connection with the same client id
# takes over a session: the mark of two reconnect loops racing.
TAKEOVER = "already connected, closing old connection"


def _link_threads(client: GatewayMqttClient) -> int:
    name = f"mqtt-link-{client.config.gateway_id}"
    return sum(1 for thread in threading.enumerate() if thread.name == name)


def _storm(
    client: GatewayMqttClient, proxy: FlakyProxy, spread_s: float = 0.0
) -> list[int]:
    """Fire disconnect requests and connection resets from many threads."""
    pause_s = spread_s / STORM_CALLS
    thread_counts: list[int] = []
    start = threading.Barrier(STORM_THREADS + 1)

    def requests() -> None:
        start.wait(WAIT_S)
        for call in range(STORM_CALLS):
            client.request_reconnect(f"storm call {call}")
            time.sleep(pause_s)

    def resets() -> None:
        start.wait(WAIT_S)
        for _ in range(STORM_CALLS // 5):
            proxy.reset_connections()
            thread_counts.append(_link_threads(client))
            time.sleep(pause_s * 5)

    workers = [threading.Thread(target=requests) for _ in range(STORM_THREADS - 1)]
    workers.append(threading.Thread(target=resets))
    for worker in workers:
        worker.start()
    start.wait(WAIT_S)
    for worker in workers:
        worker.join(WAIT_S)
    return thread_counts


def test_disconnect_storm_during_an_outage_is_one_reconnect(
    broker: MosquittoBroker, proxy: FlakyProxy, make_client: ClientFactory
) -> None:
    observer = Observer(broker.port, ["gateways/gw-1/events"])
    client = make_client(plain_config(proxy.port, backoff_min_s=0.2))
    client.wait_connected(WAIT_S)

    proxy.refuse(True)
    thread_counts = _storm(client, proxy)
    proxy.refuse(False)

    client.wait_connected(WAIT_S)
    client.enqueue(make_event(1))
    observer.wait_for(has_events(1))
    observer.close()
    assert thread_counts and set(thread_counts) == {1}
    assert client.stats.reconnect_requests == (STORM_THREADS - 1) * STORM_CALLS
    assert client.stats.link_threads_started == 1
    # One real loss; the 1,500 requests during the outage joined that loop.
    assert client.stats.links_lost == 1
    assert client.stats.connections == 2
    assert TAKEOVER not in broker.log_text()


def test_disconnect_storm_while_connected_never_overlaps_connections(
    broker: MosquittoBroker, proxy: FlakyProxy, make_client: ClientFactory
) -> None:
    observer = Observer(broker.port, ["gateways/gw-1/events"])
    client = make_client(plain_config(proxy.port, backoff_min_s=0.3))
    client.wait_connected(WAIT_S)

    # Spread over about 2 s, so the storm spans several connections.
    thread_counts = _storm(client, proxy, spread_s=2.0)

    client.wait_connected(WAIT_S)
    for number in range(5):
        client.enqueue(make_event(number))
    assert client.wait_delivered(WAIT_S)
    observer.wait_for(has_events(5))
    observer.close()
    assert set(thread_counts) == {1}
    assert client.stats.link_threads_started == 1
    assert client.stats.links_lost >= 2
    # Each drop was followed by exactly one new connection, in sequence.
    assert client.stats.connections == client.stats.links_lost + 1
    assert TAKEOVER not in broker.log_text()
    assert _link_threads(client) == 1


def test_unreachable_broker_reports_the_last_error(make_client: ClientFactory) -> None:
    with socket.socket() as placeholder:
        placeholder.bind(("127.0.0.1", 0))
        closed_port = placeholder.getsockname()[1]
    client = make_client(plain_config(closed_port, connect_timeout_s=1.0))
    with pytest.raises(
        BrokerUnavailableError, match=rf"127.0.0.1:{closed_port}.*cannot connect"
    ):
        client.wait_connected(WAIT_S, fail_fast=True)
    assert client.stats.connect_attempts >= 1
    assert not client.connected


def test_backoff_grows_within_bounds() -> None:
    backoff = Backoff(0.5, 8.0, rng=random.Random(7))
    delays = [backoff.next_delay_s() for _ in range(12)]
    windows = [min(8.0, 0.5 * 2 ** (attempt + 1)) for attempt in range(12)]
    for delay, window in zip(delays, windows, strict=True):
        assert max(0.5, window / 2) <= delay <= window
    assert delays[-1] >= 4.0
    backoff.reset()
    assert 0.5 <= backoff.next_delay_s() <= 1.0


def test_backoff_jitter_spreads_a_fleet() -> None:
    firsts = {
        round(Backoff(1.0, 120.0, rng=random.Random(seed)).next_delay_s(), 6)
        for seed in range(50)
    }
    # Fifty gateways losing the broker at once do not come back together.
    assert len(firsts) == 50
    assert min(firsts) >= 1.0 and max(firsts) <= 2.0


def test_backoff_rejects_bad_bounds() -> None:
    with pytest.raises(ValueError, match="0 < min_s <= max_s"):
        Backoff(5.0, 1.0)
