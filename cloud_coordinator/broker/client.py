"""The cloud services' MQTT client (paho-mqtt, MQTT 5, TLS).

:class:`CloudMqttClient` runs paho's network loop in its own thread and
offers a blocking :meth:`~CloudMqttClient.publish` that returns only once the
broker acknowledged the message (PUBACK for QoS 1), so a caller can record
"sent" after it. Incoming messages go to a handler; with ``manual_ack`` the
PUBACK is sent only when the handler's owner calls :meth:`ack` (after its
own commit), so a worker that dies before that gets the message again.

A persistent session (``session_expiry_s`` > 0, a stable client id) keeps
subscriptions and unacknowledged messages at the broker across restarts.
paho reconnects by itself after a lost link; subscriptions are renewed on
every connect.

Known limit: a publish that timed out stays in paho's queue and may still
reach the broker later; messages carry ids so receivers drop repeats.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from ..config import BrokerConfig, CoordinatorConfig
from .errors import (
    BrokerConfigError,
    BrokerError,
    BrokerUnavailable,
    PublishFailed,
    PublishTimeout,
)
from .tls import build_tls_context, uses_tls

__all__ = [
    "CONNECT_TIMEOUT_S",
    "CloudMqttClient",
    "InboundMessage",
    "MessageHandler",
    "encode_payload",
]

_LOGGER = logging.getLogger(__name__)

# A TLS handshake and CONNACK take milliseconds on a LAN; a loaded host or a
# remote broker gets margin before the service reports it unreachable.
CONNECT_TIMEOUT_S = 15.0
# paho's reconnect backoff after a lost link: quick first retry, capped so a
# restarted broker is found again within half a minute.
RECONNECT_MIN_DELAY_S = 1
RECONNECT_MAX_DELAY_S = 30
# Messages sent but not yet acknowledged; bounds memory when the broker is
# slow, and is far above what the blocking publish keeps in flight.
MAX_INFLIGHT_MESSAGES = 100


@dataclass(frozen=True)
class InboundMessage:
    """A message the broker delivered; pass it to :meth:`CloudMqttClient.ack`."""

    topic: str
    payload: bytes
    qos: int
    mid: int
    duplicate: bool
    retained: bool
    # Which connection delivered it: an ack belongs to that connection only.
    generation: int = 0


MessageHandler = Callable[[InboundMessage], None]


def encode_payload(payload: Mapping[str, Any]) -> bytes:
    """Return the JSON bytes of a message document.

    Raises:
        ValueError: the document has no ``schema`` field (every topic's
            payload names its schema, see DESIGN.md) or is not JSON-able.
    """
    if "schema" not in payload:
        raise ValueError("MQTT payload: a 'schema' field is required")
    try:
        text = json.dumps(payload, separators=(",", ":"), sort_keys=True)
    except (TypeError, ValueError) as exc:
        raise ValueError(
            f"MQTT payload of schema {payload['schema']!r}: {exc}"
        ) from exc
    return text.encode()


class CloudMqttClient:
    """A connection of one cloud process to the broker; see the module doc."""

    def __init__(
        self,
        config: BrokerConfig,
        *,
        base_dir: Path | None = None,
        client_id: str | None = None,
        handler: MessageHandler | None = None,
        subscriptions: Sequence[tuple[str, int]] = (),
        manual_ack: bool = False,
        session_expiry_s: int = 0,
    ) -> None:
        """Prepare a client; nothing connects before :meth:`connect`.

        Args:
            config: the ``[broker]`` section.
            base_dir: folder of relative TLS and password file names.
            client_id: this process's id (default: ``config.client_id``);
                every connected process needs its own.
            handler: called in paho's network thread for every message; it
                must not block on the broker (no :meth:`publish` in it).
            subscriptions: ``(topic filter, qos)`` pairs subscribed at every
                connect.
            manual_ack: send PUBACKs only on :meth:`ack`.
            session_expiry_s: keep the session this long after a disconnect
                (0: a clean session each time).

        Raises:
            BrokerConfigError: a TLS or password file cannot be read.
        """
        self._config = config
        self._base_dir = base_dir or Path.cwd()
        self.client_id = client_id or config.client_id
        self._handler = handler
        self._subscriptions = tuple(subscriptions)
        self._session_expiry_s = session_expiry_s
        self._connected = threading.Event()
        # Set once the broker acknowledged every subscription of this link.
        self._subscribed = threading.Event()
        self._pending_subscriptions: set[int] = set()
        self._refused_subscriptions: list[str] = []
        self._closing = False
        self._loop_thread: int | None = None
        self._generation = 0
        self._last_failure = "not connected yet"
        self._client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
            protocol=MQTTProtocolVersion.MQTTv5,
            manual_ack=manual_ack,
        )
        self._client.max_inflight_messages_set(MAX_INFLIGHT_MESSAGES)
        self._client.reconnect_delay_set(RECONNECT_MIN_DELAY_S, RECONNECT_MAX_DELAY_S)
        if uses_tls(config):
            self._client.tls_set_context(build_tls_context(config, self._base_dir))
        if config.username:
            self._client.username_pw_set(config.username, self._password())
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_message = self._on_message
        self._client.on_subscribe = self._on_subscribe

    @classmethod
    def from_config(cls, config: CoordinatorConfig, **kwargs: Any) -> CloudMqttClient:
        """Return a client for ``config.broker``, paths from the config's folder."""
        return cls(config.broker, base_dir=config.base_dir, **kwargs)

    @property
    def where(self) -> str:
        """Return ``host:port`` of the broker, for log lines."""
        return f"{self._config.host}:{self._config.port}"

    @property
    def connected(self) -> bool:
        """Return whether the link is up right now."""
        return self._connected.is_set()

    def _password(self) -> str | None:
        if not self._config.password_file:
            return None
        path = self._base_dir / self._config.password_file
        try:
            return path.read_text().strip()
        except OSError as exc:
            raise BrokerConfigError(
                f"[broker] password_file {str(path)!r}: {exc.strerror or exc}"
            ) from exc

    # -- paho callbacks (network thread) -------------------------------------

    def _on_connect(
        self,
        client: mqtt.Client,
        userdata: Any,
        flags: mqtt.ConnectFlags,
        reason: ReasonCode,
        properties: Properties | None,
    ) -> None:
        self._loop_thread = threading.get_ident()
        if reason.is_failure:
            self._last_failure = f"broker refused the connection: {reason}"
            _LOGGER.error("mqtt %s at %s: %s", self.client_id, self.where, reason)
            return
        self._generation += 1
        self._subscribed.clear()
        self._pending_subscriptions.clear()
        for topic, qos in self._subscriptions:
            _, mid = client.subscribe(topic, qos)
            if mid is not None:
                self._pending_subscriptions.add(mid)
        if not self._pending_subscriptions:
            self._subscribed.set()
        _LOGGER.info(
            "mqtt %s: connected to %s (session present: %s, %d subscriptions)",
            self.client_id,
            self.where,
            flags.session_present,
            len(self._subscriptions),
        )
        self._connected.set()

    def _on_subscribe(
        self,
        client: mqtt.Client,
        userdata: Any,
        mid: int,
        reasons: list[ReasonCode],
        properties: Properties | None,
    ) -> None:
        refused = [str(reason) for reason in reasons if reason.is_failure]
        if refused:
            self._refused_subscriptions = refused
            _LOGGER.error(
                "mqtt %s: %s refused a subscription: %s; check the broker's ACL "
                "for this identity",
                self.client_id,
                self.where,
                ", ".join(refused),
            )
        self._pending_subscriptions.discard(mid)
        if not self._pending_subscriptions:
            self._subscribed.set()

    def _on_disconnect(
        self,
        client: mqtt.Client,
        userdata: Any,
        flags: mqtt.DisconnectFlags,
        reason: ReasonCode,
        properties: Properties | None,
    ) -> None:
        self._connected.clear()
        self._last_failure = f"disconnected: {reason}"
        if not self._closing:
            _LOGGER.warning(
                "mqtt %s: lost %s (%s); reconnecting",
                self.client_id,
                self.where,
                reason,
            )

    def _on_message(
        self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage
    ) -> None:
        if self._handler is None:
            return
        inbound = InboundMessage(
            topic=message.topic,
            payload=bytes(message.payload),
            qos=message.qos,
            mid=message.mid,
            duplicate=bool(message.dup),
            retained=bool(message.retain),
            generation=self._generation,
        )
        try:
            self._handler(inbound)
        except Exception:
            # A handler bug must not kill paho's network thread.
            _LOGGER.exception(
                "mqtt %s: handler failed on %s", self.client_id, inbound.topic
            )

    # -- public API -------------------------------------------------------------

    def connect(self, timeout_s: float = CONNECT_TIMEOUT_S) -> None:
        """Connect, start the network thread, wait for CONNACK and SUBACKs.

        Raises:
            BrokerUnavailable: no accepted connection and subscriptions
                within ``timeout_s``, or a subscription refused (the message
                says what failed); the client is stopped.
        """
        properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        if self._session_expiry_s > 0:
            properties.SessionExpiryInterval = self._session_expiry_s
        self._closing = False
        try:
            self._client.connect(
                self._config.host,
                self._config.port,
                keepalive=self._config.keepalive_s,
                clean_start=self._session_expiry_s <= 0,
                properties=properties,
            )
        except OSError as exc:
            raise BrokerUnavailable(
                f"mqtt {self.client_id}: cannot connect to {self.where}: {exc}; "
                "check [broker] host, port and TLS files"
            ) from exc
        self._client.loop_start()
        deadline = time.monotonic() + timeout_s
        if not self._connected.wait(timeout_s) or not self._subscribed.wait(
            max(0.0, deadline - time.monotonic())
        ):
            self.close()
            raise BrokerUnavailable(
                f"mqtt {self.client_id}: no accepted connection and "
                f"subscriptions at {self.where} within {timeout_s:.0f} s "
                f"({self._last_failure})"
            )
        if self._refused_subscriptions:
            refused = ", ".join(self._refused_subscriptions)
            self.close()
            raise BrokerUnavailable(
                f"mqtt {self.client_id}: {self.where} refused the subscriptions "
                f"{[topic for topic, _ in self._subscriptions]} ({refused}); "
                "check the broker's ACL for this identity"
            )

    def publish(
        self,
        topic: str,
        payload: Mapping[str, Any],
        qos: int = 1,
        retain: bool = False,
        *,
        timeout_s: float | None = None,
    ) -> None:
        """Send ``payload`` (JSON) and wait until the broker acknowledged it.

        Args:
            topic: where to publish (no wildcards).
            payload: the message document; it must carry ``schema``.
            qos: 0 returns once written to the socket, 1 waits for PUBACK,
                2 for PUBCOMP.
            retain: ask the broker to keep it for later subscribers.
            timeout_s: default ``[broker] publish_timeout_s``; waiting for
                the connection counts.

        Raises:
            ValueError: no ``schema`` field, a bad topic or QoS.
            BrokerError: called from a message handler (it would deadlock).
            PublishTimeout: no acknowledgement in time (the message may
                still be delivered later).
            PublishFailed: paho refused the message.
        """
        if qos not in (0, 1, 2):
            raise ValueError(f"MQTT publish to {topic!r}: qos {qos} is not 0, 1 or 2")
        if not topic or "+" in topic or "#" in topic:
            raise ValueError(f"MQTT publish: topic {topic!r} must be a plain topic")
        if threading.get_ident() == self._loop_thread:
            raise BrokerError(
                f"mqtt {self.client_id}: publish to {topic} from the network "
                "thread would wait for itself; publish from another thread"
            )
        data = encode_payload(payload)
        timeout = self._config.publish_timeout_s if timeout_s is None else timeout_s
        deadline = time.monotonic() + timeout
        if not self._connected.wait(timeout):
            raise PublishTimeout(
                f"mqtt {self.client_id}: not connected to {self.where} for "
                f"{timeout:.1f} s; {topic} not sent ({self._last_failure})"
            )
        info = self._client.publish(topic, data, qos=qos, retain=retain)
        if info.rc not in (
            MQTTErrorCode.MQTT_ERR_SUCCESS,
            MQTTErrorCode.MQTT_ERR_NO_CONN,
        ):
            raise PublishFailed(
                f"mqtt {self.client_id}: publish to {topic} refused: "
                f"{mqtt.error_string(info.rc)}"
            )
        remaining_s = max(0.0, deadline - time.monotonic())
        try:
            info.wait_for_publish(remaining_s)
        except (RuntimeError, ValueError) as exc:
            raise PublishFailed(
                f"mqtt {self.client_id}: publish to {topic} failed: {exc}"
            ) from exc
        if not info.is_published():
            raise PublishTimeout(
                f"mqtt {self.client_id}: {self.where} did not acknowledge "
                f"{topic} (qos {qos}) within {timeout:.1f} s"
            )

    def ack(self, message: InboundMessage) -> None:
        """Acknowledge ``message`` (manual-ack clients, after the commit).

        A link lost since delivery makes the ack void (its packet id may
        mean another message on the new link); the broker sends the message
        again (QoS 1), which the receiver drops by id.
        """
        if message.qos == 0:
            return
        if message.generation != self._generation or not self.connected:
            _LOGGER.debug(
                "mqtt %s: ack of %s (mid %d) dropped: delivered on an older link",
                self.client_id,
                message.topic,
                message.mid,
            )
            return
        rc = self._client.ack(message.mid, message.qos)
        if rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
            _LOGGER.warning(
                "mqtt %s: ack of %s (mid %d) not sent: %s; the broker resends it",
                self.client_id,
                message.topic,
                message.mid,
                mqtt.error_string(rc),
            )

    def close(self) -> None:
        """Disconnect cleanly and stop the network thread."""
        self._closing = True
        self._client.disconnect()
        self._client.loop_stop()
        self._connected.clear()

    def __enter__(self) -> CloudMqttClient:
        """Connect (see :meth:`connect`)."""
        self.connect()
        return self

    def __exit__(self, *exc_info: object) -> None:
        """Close (see :meth:`close`)."""
        self.close()
