"""Commands and model announcements: checked, handed over, or quarantined."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from mqtt_helpers import WAIT_S, ClientFactory, Observer, plain_config, wait_until

from edge_agent.mqtt import (
    InboundKind,
    InboundMessage,
    MqttPayloadError,
    Topics,
    parse_inbound,
)
from tests.support.mosquitto import MosquittoBroker

COMMANDS = "gateways/gw-1/commands"
TOPICS = Topics("gateways", "models", "gw-1")


def _command(**fields: Any) -> dict[str, Any]:
    document = {
        "schema": "gateway-command/1",
        "command_id": str(uuid.uuid4()),
        "type": "crash_verdict",
        "rider_id": "rider-1",
        "suit_id": "SUIT-1",
        "log_id": "log-00007",
        "verdict": "rejected",
        "t_offset_s": None,
        "issued_at": "2026-12-04T10:00:00+00:00",
    }
    document.update(fields)
    return document


def _announcement(name: str = "crash-detector", **fields: Any) -> dict[str, Any]:
    document = {
        "schema": "model-announce/1",
        "model_name": name,
        "version": "1.3.0",
        "targets": [f"{name}-1.3.0.tflite", f"{name}-1.3.0.json"],
    }
    document.update(fields)
    return document


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (b"{not json", r"topic 'gateways/gw-1/commands': payload is not valid JSON"),
        (b"\xff\xfe", r"payload is not UTF-8 \(byte offset 0\)"),
        (b"[1, 2]", r"expected a JSON object, found list"),
        (json.dumps(_command(schema="gateway-status/1")).encode(), r"field 'schema'"),
        (json.dumps(_command(command_id="42")).encode(), r"'command_id'.*UUID"),
        (
            json.dumps(_command(verdict="maybe")).encode(),
            r"'verdict'.*found 'maybe'",
        ),
        (
            json.dumps(_command(type="crash_confirmation")).encode(),
            r"'type'.*found 'crash_confirmation'",
        ),
        (json.dumps(_command(t_offset_s=-1.0)).encode(), r"'t_offset_s'.*>= 0"),
        (json.dumps(_command(issued_at="soon")).encode(), r"'issued_at'.*ISO 8601"),
        (
            json.dumps(
                {
                    "schema": "gateway-command/1",
                    "command_id": str(uuid.uuid4()),
                    "type": "training_consent",
                    "rider_id": "rider-1",
                    "opted_out": "yes",
                    "issued_at": "2026-12-04T10:00:00+00:00",
                }
            ).encode(),
            r"'opted_out'.*bool, found str",
        ),
        (json.dumps(_command(type="reboot")).encode(), r"'type'.*found 'reboot'"),
        (json.dumps(_command(t_offset_s=True)).encode(), r"'t_offset_s'.*found bool"),
        (
            json.dumps({k: v for k, v in _command().items() if k != "log_id"}).encode(),
            r"field 'log_id': missing \(expected str\)",
        ),
    ],
)
def test_bad_command_names_topic_and_field(payload: bytes, expected: str) -> None:
    with pytest.raises(MqttPayloadError, match=expected):
        parse_inbound(TOPICS, COMMANDS, payload)


def test_announcement_must_match_its_topic() -> None:
    topic = "models/crash-detector/announce"
    message = parse_inbound(TOPICS, topic, json.dumps(_announcement()).encode())
    assert message is not None and message.kind is InboundKind.MODEL_ANNOUNCE
    with pytest.raises(MqttPayloadError, match=r"'model_name'.*from the topic"):
        parse_inbound(TOPICS, topic, json.dumps(_announcement("other")).encode())
    with pytest.raises(MqttPayloadError, match=r"'targets\[1\]'"):
        parse_inbound(
            TOPICS, topic, json.dumps(_announcement(targets=["a", 3])).encode()
        )
    # An empty retained payload only clears the announcement.
    assert parse_inbound(TOPICS, topic, b"", retained=True) is None


def test_bad_messages_are_quarantined_and_the_link_keeps_running(
    broker: MosquittoBroker, make_client: ClientFactory
) -> None:
    received: list[InboundMessage] = []
    client = make_client(plain_config(broker.port), on_message=received.append)
    client.wait_connected(WAIT_S)
    cloud = Observer(broker.port, [])
    bad = [
        b"{not json",
        json.dumps(_command(verdict="yes")).encode(),
        json.dumps({"schema": "gateway-command/1"}).encode(),
    ]
    for payload in bad:
        cloud.publish(COMMANDS, payload)
    good = _command(verdict="confirmed")
    cloud.publish(COMMANDS, json.dumps(good))
    # One connection delivers in order: the good command comes last.
    wait_until(lambda: bool(received), "good command at the gateway")
    cloud.close()

    assert [message.document for message in received] == [good]
    assert client.connected
    assert client.stats.inbound_rejected == 3
    entries = client.outbox.quarantine.entries()
    assert [entry.payload for entry in entries] == bad
    assert "payload is not valid JSON" in entries[0].reason
    assert "field 'verdict'" in entries[1].reason
    assert "field 'command_id'" in entries[2].reason
    assert all(entry.topic == COMMANDS for entry in entries)


def test_retained_announcement_reaches_a_gateway_that_connects_later(
    broker: MosquittoBroker, make_client: ClientFactory
) -> None:
    cloud = Observer(broker.port, [])
    announcement = _announcement()
    topic = "models/crash-detector/announce"
    cloud.wait_puback(cloud.publish(topic, json.dumps(announcement), retain=True))
    cloud.close()

    received: list[InboundMessage] = []
    make_client(plain_config(broker.port), on_message=received.append)
    wait_until(lambda: bool(received), "announcement at the gateway")
    (message,) = received
    assert message.kind is InboundKind.MODEL_ANNOUNCE
    assert message.retained
    assert message.document == announcement


def test_failing_handler_keeps_the_message_and_the_link(
    broker: MosquittoBroker, make_client: ClientFactory
) -> None:
    handled: list[InboundMessage] = []

    def handler(message: InboundMessage) -> None:
        if message.document.get("log_id") == "explode":
            raise RuntimeError("agent queue full")
        handled.append(message)

    client = make_client(plain_config(broker.port), on_message=handler)
    client.wait_connected(WAIT_S)
    cloud = Observer(broker.port, [])
    failing = json.dumps(_command(log_id="explode")).encode()
    cloud.publish(COMMANDS, failing)
    cloud.publish(COMMANDS, json.dumps(_command()))
    wait_until(lambda: bool(handled), "second command at the gateway")
    cloud.close()
    assert client.stats.handler_errors == 1
    (entry,) = client.outbox.quarantine.entries()
    assert entry.payload == failing
    assert "handler failed: RuntimeError: agent queue full" in entry.reason
    assert client.connected
