"""Run a gateway MQTT client in a child process until it is killed.

Argument: one JSON object with ``config`` (MqttConfig fields), ``outbox``
(path), ``events`` (how many events to enqueue) and ``wait_for_go`` (read a
line from stdin before enqueueing). The child publishes a status, prints
``CONNECTED`` once the broker session is up (unless the broker is
unreachable), enqueues the events and prints ``ENQUEUED`` once every
enqueue has committed, then waits to be killed (SIGKILL in the tests).
"""

from __future__ import annotations

import json
import logging
import sys
import threading
import time

from mqtt_helpers import make_event

from edge_agent.mqtt import BrokerConnectError, GatewayMqttClient, MqttConfig

# A child nobody kills ends itself after this long.
WAIT_FOR_KILL_S = 120.0


def main() -> int:
    """Run the client as the argument says; return the exit code."""
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="child %(name)s: %(message)s"
    )
    arguments = json.loads(sys.argv[1])
    config = MqttConfig(**arguments["config"])
    client = GatewayMqttClient(config, arguments["outbox"])
    client.update_status(
        {
            "activity": "idle",
            "model_version": "1.0.0",
            "buffer": {"pulled": 2, "uploaded": 5},
            "disk_used_bytes": 123_456,
            "last_sync_utc": None,
            "held_back": {"pull": "suit not charging"},
        }
    )
    client.start()
    connected = threading.Thread(target=_report_connected, args=(client,), daemon=True)
    connected.start()
    if arguments["wait_for_go"]:
        sys.stdin.readline()
    for number in range(arguments["events"]):
        client.enqueue(make_event(number, config.gateway_id, prefix="child"))
    print("ENQUEUED", flush=True)
    time.sleep(WAIT_FOR_KILL_S)
    return 3


def _report_connected(client: GatewayMqttClient) -> None:
    try:
        client.wait_connected(WAIT_FOR_KILL_S)
    except BrokerConnectError:
        return
    print("CONNECTED", flush=True)


if __name__ == "__main__":
    sys.exit(main())
