"""A gateway on a bad uplink: stalls, resets, throttling, refusals, ~45 s.

Events are produced all through the fault script; afterwards every event
must have reached the cloud, and after de-duplication by ``event_id``
exactly once: nothing lost, nothing invented.
"""

from __future__ import annotations

import logging
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
    unique_event_ids,
)

from tests.support.flaky_proxy import (
    FlakyProxy,
    pause,
    refuse_for,
    reset,
    stall,
    throttle,
)
from tests.support.mosquitto import MosquittoBroker

_LOGGER = logging.getLogger(__name__)

EVENT_COUNT = 150
ENQUEUE_INTERVAL_S = 0.25
# Stalls longer than 1.5 keepalives make paho give the link up; shorter
# ones must be ridden out with the PUBACKs arriving late.
KEEPALIVE_S = 5
SCRIPT = [
    pause(2),
    stall(9),
    pause(3),
    reset(),
    pause(2),
    throttle(300, 10),
    pause(2),
    stall(3, "down"),
    reset(),
    refuse_for(4),
    pause(2),
    throttle(150, 5, "up"),
    reset(),
    stall(2, "up"),
    pause(2),
]


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_every_event_arrives_exactly_once_through_a_flaky_uplink(
    broker: MosquittoBroker, proxy: FlakyProxy, make_client: ClientFactory
) -> None:
    observer = Observer(broker.port, ["gateways/gw-1/events"])
    client = make_client(
        plain_config(
            proxy.port,
            keepalive_s=KEEPALIVE_S,
            connect_timeout_s=4.0,
            backoff_min_s=0.2,
            backoff_max_s=2.0,
        )
    )
    client.wait_connected(WAIT_S)
    expected = {make_event(number).event_id for number in range(EVENT_COUNT)}

    def produce() -> None:
        for number in range(EVENT_COUNT):
            client.enqueue(make_event(number))
            time.sleep(ENQUEUE_INTERVAL_S)

    producer = threading.Thread(target=produce, name="producer")
    producer.start()
    script = proxy.play_in_background(SCRIPT)
    script.join(120)
    producer.join(WAIT_S * 2)
    assert not producer.is_alive()

    assert client.wait_delivered(90), client.outbox.counts()
    observer.wait_for(has_events(EVENT_COUNT), timeout_s=60)
    observer.close()
    received, repeats = unique_event_ids(observer)
    _LOGGER.info(
        "flaky uplink: %d events, %d repeats dropped by id, %d links lost, "
        "%d connect attempts; proxy %s",
        len(received),
        repeats,
        client.stats.links_lost,
        client.stats.connect_attempts,
        proxy.stats,
    )
    assert received == expected
    assert len(observer.event_documents()) == EVENT_COUNT + repeats
    assert client.outbox.counts() == {
        "pending": 0,
        "delivered": EVENT_COUNT,
        "refused": 0,
    }
    # The faults really hit the link: it was lost and rebuilt several times,
    # by one loop.
    assert client.stats.links_lost >= 3
    assert client.stats.link_threads_started == 1
    assert proxy.stats.resets >= 3
