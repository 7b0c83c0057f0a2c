"""Helpers for the MQTT tests: an observing client, events, a child gateway."""

from __future__ import annotations

import json
import os
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from edge_agent.mqtt import (
    EventDeduplicator,
    GatewayEvent,
    GatewayMqttClient,
    MqttConfig,
    parse_event,
)
from edge_agent.mqtt.tls import ExpectedNameContext
from tests.support.certs import BROKER_NAME, CertPair, TestPki

PROJECT_ROOT = Path(__file__).resolve().parents[2]
CHILD_SCRIPT = Path(__file__).with_name("gateway_child.py")
# Generous waits for things that happen in milliseconds on an idle machine;
# only a hang reaches them.
WAIT_S = 30.0
SHA = "ab" * 32

ClientFactory = Callable[..., GatewayMqttClient]


def wait_until(
    predicate: Callable[[], bool], what: str, timeout_s: float = WAIT_S
) -> None:
    """Poll ``predicate`` until it holds.

    Raises:
        TimeoutError: naming ``what``, after ``timeout_s``.
    """
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not reached within {timeout_s} s")
        time.sleep(0.02)


def plain_config(port: int, gateway_id: str = "gw-1", **overrides: Any) -> MqttConfig:
    """Return a config for a plain loopback listener with quick reconnects."""
    config = MqttConfig(
        enabled=True,
        host="127.0.0.1",
        port=port,
        gateway_id=gateway_id,
        tls=False,
        keepalive_s=5,
        connect_timeout_s=5.0,
        backoff_min_s=0.1,
        backoff_max_s=1.0,
    )
    return replace(config, **overrides)


def tls_config(
    port: int, pki: TestPki, gateway_id: str = "gw-1", **overrides: Any
) -> MqttConfig:
    """Return a config for the TLS listener, reached by IP, expecting broker.test."""
    pair = pki.client(gateway_id)
    config = plain_config(
        port,
        gateway_id,
        tls=True,
        ca_file=str(pki.ca_file),
        cert_file=str(pair.cert_file),
        key_file=str(pair.key_file),
        tls_server_name=BROKER_NAME,
    )
    return replace(config, **overrides)


def make_event(
    number: int, gateway_id: str = "gw-1", prefix: str = "log"
) -> GatewayEvent:
    """Return a log_uploaded event for log ``{prefix}-{number}``."""
    log_id = f"{prefix}-{number:05d}"
    return GatewayEvent.create(
        "log_uploaded",
        gateway_id=gateway_id,
        rider_id="r-1",
        suit_id="SUIT-0001",
        log_id=log_id,
        object_keys={
            "raw_csv": f"raw/r-1/SUIT-0001/2026/12/04/{log_id}.csv.gz",
            "analytics": f"analytics/r-1/SUIT-0001/{log_id}.json",
        },
        sha256=SHA,
    )


@dataclass(frozen=True)
class Received:
    """One message an observer got."""

    topic: str
    payload: bytes
    retained: bool


class Observer:
    """A cloud-side test client that records what it receives.

    Uses paho's own network thread (fine for a test tool). With a
    ``client_id`` and ``persistent=True`` it keeps its session across
    reconnects, so QoS 1 messages published while it was away still come.
    """

    def __init__(
        self,
        port: int,
        topics: list[str],
        *,
        client_id: str = "",
        persistent: bool = False,
        tls: tuple[TestPki, CertPair] | None = None,
    ) -> None:
        self.messages: list[Received] = []
        self.subscribed = threading.Event()
        self.subscribe_codes: list[Any] = []
        self.publish_codes: dict[int, Any] = {}
        self._condition = threading.Condition()
        self._topics = topics
        self._client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=MQTTProtocolVersion.MQTTv5,
        )
        if tls is not None:
            pki, pair = tls
            # Reach 127.0.0.1 but verify the certificate against broker.test.
            context = ExpectedNameContext(ssl.PROTOCOL_TLS_CLIENT)
            context.expected_name = BROKER_NAME
            context.load_verify_locations(cafile=str(pki.ca_file))
            context.load_cert_chain(str(pair.cert_file), str(pair.key_file))
            self._client.tls_set_context(context)
        self._client.on_connect = self._on_connect
        self._client.on_message = self._on_message
        self._client.on_subscribe = self._on_subscribe
        self._client.on_publish = self._on_publish
        properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        properties.SessionExpiryInterval = 3600 if persistent else 0
        self._client.connect(
            "127.0.0.1",
            port,
            keepalive=30,
            clean_start=not persistent,
            properties=properties,
        )
        self._client.loop_start()
        if not self.subscribed.wait(WAIT_S):
            raise TimeoutError(f"observer: no CONNACK/SUBACK from port {port}")

    def _on_connect(self, client: mqtt.Client, *args: Any) -> None:
        if self._topics:
            client.subscribe([(topic, 1) for topic in self._topics])
        else:
            self.subscribed.set()

    def _on_subscribe(
        self, client: mqtt.Client, userdata: Any, mid: int, codes: Any, props: Any
    ) -> None:
        self.subscribe_codes = list(codes)
        self.subscribed.set()

    def _on_publish(
        self, client: mqtt.Client, userdata: Any, mid: int, code: Any, props: Any
    ) -> None:
        with self._condition:
            self.publish_codes[mid] = code
            self._condition.notify_all()

    def _on_message(
        self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage
    ) -> None:
        with self._condition:
            self.messages.append(
                Received(message.topic, bytes(message.payload), bool(message.retain))
            )
            self._condition.notify_all()

    def publish(self, topic: str, payload: bytes | str, *, retain: bool = False) -> int:
        """Publish at QoS 1; return the message id."""
        info = self._client.publish(topic, payload, qos=1, retain=retain)
        return int(info.mid)

    def wait_for(
        self, predicate: Callable[[list[Received]], bool], timeout_s: float = WAIT_S
    ) -> list[Received]:
        """Wait until ``predicate(messages)`` holds; return the messages.

        Raises:
            TimeoutError: it did not hold within ``timeout_s``.
        """
        deadline = time.monotonic() + timeout_s
        with self._condition:
            while not predicate(self.messages):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(
                        f"observer: condition not met within {timeout_s} s; "
                        f"{len(self.messages)} messages so far"
                    )
                self._condition.wait(remaining)
            return list(self.messages)

    def wait_puback(self, mid: int, timeout_s: float = WAIT_S) -> Any:
        """Return the reason code of the PUBACK for ``mid``."""
        deadline = time.monotonic() + timeout_s
        with self._condition:
            while mid not in self.publish_codes:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"observer: no PUBACK for mid {mid}")
                self._condition.wait(remaining)
            return self.publish_codes[mid]

    def event_documents(self) -> list[dict[str, Any]]:
        """Return every event received (repeats included), parsed and checked."""
        with self._condition:
            received = list(self.messages)
        return [
            parse_event(item.topic, item.payload)
            for item in received
            if item.topic.endswith("/events")
        ]

    def statuses(self) -> list[dict[str, Any]]:
        """Return every status document received, in order."""
        with self._condition:
            received = list(self.messages)
        return [
            json.loads(item.payload)
            for item in received
            if item.topic.endswith("/status") and item.payload
        ]

    def close(self) -> None:
        """Disconnect and stop paho's thread."""
        self._client.disconnect()
        self._client.loop_stop()


def unique_event_ids(observer: Observer) -> tuple[set[str], int]:
    """Return the distinct event ids an observer got, and how many repeats."""
    dedup = EventDeduplicator()
    unique = {
        document["event_id"]
        for document in observer.event_documents()
        if dedup.first_time(document["event_id"])
    }
    return unique, dedup.repeats


def has_events(count: int) -> Callable[[list[Received]], bool]:
    """Return a predicate: at least ``count`` distinct events received."""

    def predicate(messages: list[Received]) -> bool:
        ids = {
            json.loads(item.payload)["event_id"]
            for item in messages
            if item.topic.endswith("/events")
        }
        return len(ids) >= count

    return predicate


class ChildGateway:
    """A gateway client in a child process, to be killed with SIGKILL."""

    def __init__(
        self,
        config: MqttConfig,
        outbox: Path,
        *,
        events: int = 0,
        wait_for_go: bool = False,
    ) -> None:
        arguments = {
            "wait_for_go": wait_for_go,
            "config": {
                key: getattr(config, key) for key in config.__dataclass_fields__
            },
            "outbox": str(outbox),
            "events": events,
        }
        environment = dict(os.environ, PYTHONPATH=str(PROJECT_ROOT))
        self.lines: list[str] = []
        self.process = subprocess.Popen(
            [sys.executable, str(CHILD_SCRIPT), json.dumps(arguments)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=environment,
            cwd=PROJECT_ROOT,
        )
        self._condition = threading.Condition()
        self._ended = False
        self._reader = threading.Thread(target=self._read_lines, daemon=True)
        self._reader.start()

    def _read_lines(self) -> None:
        assert self.process.stdout is not None
        for raw in self.process.stdout:
            with self._condition:
                self.lines.append(raw.decode().strip())
                self._condition.notify_all()
        with self._condition:
            self._ended = True
            self._condition.notify_all()

    def wait_line(self, expected: str, timeout_s: float = WAIT_S) -> None:
        """Wait until the child has printed ``expected`` on a line of its own.

        Raises:
            TimeoutError: not printed in time (the child's stderr attached).
        """
        with self._condition:
            self._condition.wait_for(
                lambda: expected in self.lines or self._ended, timeout_s
            )
            if expected in self.lines:
                return
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=WAIT_S)
        stderr = self.process.stderr.read().decode() if self.process.stderr else ""
        self.kill()
        raise TimeoutError(
            f"child gateway never printed {expected!r}:\n{stderr[-3000:]}"
        )

    def go(self) -> None:
        """Let a child started with ``wait_for_go`` enqueue its events."""
        assert self.process.stdin is not None
        self.process.stdin.write(b"go\n")
        self.process.stdin.flush()

    def kill(self) -> None:
        """SIGKILL the child, reap it and close its pipes."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=WAIT_S)
        self._reader.join(WAIT_S)
        for stream in (self.process.stdin, self.process.stdout, self.process.stderr):
            if stream is not None:
                stream.close()
