"""One broker connection: a fresh paho client and the messages in flight.

The reconnect loop (:mod:`.client`) makes a new :class:`LinkSession` per
attempt and drives it from its own thread by calling :meth:`tick`; paho's
own network thread and automatic reconnects are not used. Because every
connection has its own paho client, nothing of a dead connection (queued
packets, message ids, late callbacks) leaks into the next one: the outbox
is the only memory that carries over.

The session speaks MQTT 5 with ``clean_start = false`` and a session expiry,
so commands queued by the broker while the gateway was away still arrive.
Inbound messages are acknowledged (manual ack) only after the handler has
taken them or they were quarantined.

paho-mqtt, ``ssl`` and socket errors are mapped to :mod:`.errors` here.
"""

from __future__ import annotations

import logging
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from .config import MqttConfig
from .errors import (
    BrokerConnectError,
    BrokerRefusedError,
    BrokerUnavailableError,
)
from .outbox import OutboxEntry
from .tls import build_tls_context, identity_error

__all__ = ["LinkSession", "SessionAcks"]

_LOGGER = logging.getLogger(__name__)

QOS_AT_LEAST_ONCE = 1
# Longest single wait inside paho's select(); the loop also checks stop and
# reconnect requests and new outbox rows this often.
TICK_S = 0.1


@dataclass
class SessionAcks:
    """What the broker acknowledged since the last call to take them."""

    delivered: list[str] = field(default_factory=list)
    refused: list[tuple[str, str]] = field(default_factory=list)
    # A PUBACK for the status came back (accepted or refused).
    status_answered: bool = False
    status_acked: bool = False


InboundCallback = Callable[[mqtt.MQTTMessage], None]


class LinkSession:
    """A single MQTT connection and its in-flight events."""

    def __init__(
        self,
        config: MqttConfig,
        *,
        will_payload: str,
        on_message: InboundCallback,
        label: str,
    ) -> None:
        self.config = config
        self.topics = config.topics()
        self.label = label
        self.lost_reason: str | None = None
        self._on_inbound = on_message
        self._connack: ReasonCode | None = None
        self._inflight: dict[int, str] = {}
        self._status_mid: int | None = None
        self._acks = SessionAcks()
        self._last_paho_error: str | None = None
        self._tls_context = build_tls_context(config) if config.tls else None
        self._client = self._make_client(will_payload)

    # ----- set-up -----

    def _make_client(self, will_payload: str) -> mqtt.Client:
        config = self.config
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=config.effective_client_id,
            protocol=MQTTProtocolVersion.MQTTv5,
            reconnect_on_failure=False,
            manual_ack=True,
        )
        client.connect_timeout = config.connect_timeout_s
        client.max_inflight_messages_set(config.max_inflight)
        client.will_set(
            self.topics.status, will_payload, qos=QOS_AT_LEAST_ONCE, retain=True
        )
        if self._tls_context is not None:
            client.tls_set_context(self._tls_context)
        client.on_connect = self._handle_connect
        client.on_disconnect = self._handle_disconnect
        client.on_publish = self._handle_publish
        client.on_subscribe = self._handle_subscribe
        client.on_message = self._handle_message
        client.on_log = self._handle_log
        return client

    def open(self) -> None:
        """Connect, wait for CONNACK, subscribe; bounded by connect_timeout_s.

        Raises:
            BrokerIdentityError: the TLS certificate is untrusted or for
                another name than ``tls_server_name``.
            BrokerRefusedError: CONNACK with a failure (not authorised, ...).
            BrokerUnavailableError: refused, reset, timed out, or no CONNACK.
        """
        config = self.config
        # paho's Properties constructor has no annotations.
        properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        properties.SessionExpiryInterval = config.session_expiry_s
        try:
            self._client.connect(
                config.host,
                config.port,
                keepalive=config.keepalive_s,
                clean_start=False,
                properties=properties,
            )
        except ssl.SSLCertVerificationError as exc:
            self._close_failed_tls()
            raise identity_error(config, exc) from exc
        except ssl.SSLError as exc:
            self._close_failed_tls()
            raise BrokerUnavailableError(
                config.broker,
                f"TLS handshake failed: {exc}; check that the port is the broker's "
                "TLS listener and that cert_file/key_file hold this gateway's "
                "client certificate",
            ) from exc
        except (TimeoutError, ConnectionError, OSError) as exc:
            self._close_failed_tls()
            raise BrokerUnavailableError(
                config.broker, f"cannot connect ({exc or type(exc).__name__})"
            ) from exc
        self._await_connack()
        self._subscribe()

    def _close_failed_tls(self) -> None:
        if self._tls_context is not None:
            self._tls_context.close_last_socket()

    def _await_connack(self) -> None:
        config = self.config
        deadline = time.monotonic() + config.connect_timeout_s
        closed = False
        while self._connack is None and time.monotonic() < deadline:
            if self._client.loop(timeout=TICK_S) != MQTTErrorCode.MQTT_ERR_SUCCESS:
                closed = True
                break
        if self._connack is None:
            detail = self._last_paho_error or "no detail from the socket"
            what = (
                "closed the connection before CONNACK"
                if closed
                else f"sent no CONNACK within {config.connect_timeout_s:.0f} s"
            )
            hint = (
                "; a TLS broker that refuses the client certificate closes the "
                "link here: check cert_file/key_file and the broker's CA"
                if config.tls
                else "; a TLS listener resets plain clients like this: if the "
                "port is TLS, set mqtt.tls = true"
            )
            raise BrokerUnavailableError(config.broker, f"{what} ({detail}){hint}")
        if self._connack.is_failure:
            raise BrokerRefusedError(
                config.broker,
                f"refused the connection of client {config.effective_client_id!r}: "
                f"{self._connack} (reason code {self._connack.value}); check the "
                "gateway's certificate and the broker's ACL",
                self._connack.value,
            )

    def _subscribe(self) -> None:
        result, _mid = self._client.subscribe(
            [
                (self.topics.commands, QOS_AT_LEAST_ONCE),
                (self.topics.announcements, QOS_AT_LEAST_ONCE),
            ]
        )
        if result != MQTTErrorCode.MQTT_ERR_SUCCESS:
            raise BrokerUnavailableError(
                self.config.broker, f"subscribe failed: {mqtt.error_string(result)}"
            )

    # ----- running -----

    @property
    def alive(self) -> bool:
        """Return True while the connection is up."""
        return self.lost_reason is None and self._client.is_connected()

    def tick(self, timeout_s: float = TICK_S) -> None:
        """Let paho read, write and keep the connection alive once."""
        result = self._client.loop(timeout=timeout_s)
        if result != MQTTErrorCode.MQTT_ERR_SUCCESS and self.lost_reason is None:
            self.lost_reason = self._last_paho_error or mqtt.error_string(result)

    def free_slots(self) -> int:
        """Return how many more events may be in flight now."""
        return self.config.max_inflight - len(self._inflight)

    def publish_event(self, entry: OutboxEntry) -> bool:
        """Send one outbox event at QoS 1; return False if paho refused it."""
        info = self._client.publish(entry.topic, entry.payload, qos=QOS_AT_LEAST_ONCE)
        if info.rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
            return False
        self._inflight[info.mid] = entry.event_id
        return True

    def publish_status(self, payload: str) -> bool:
        """Send the retained status at QoS 1; return False if paho refused it."""
        info = self._client.publish(
            self.topics.status, payload, qos=QOS_AT_LEAST_ONCE, retain=True
        )
        if info.rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
            return False
        self._status_mid = info.mid
        return True

    def take_acks(self) -> SessionAcks:
        """Return and forget the acknowledgements gathered so far."""
        acks, self._acks = self._acks, SessionAcks()
        return acks

    def in_flight(self) -> int:
        """Return how many events wait for their PUBACK."""
        return len(self._inflight)

    def drop(self) -> None:
        """End the connection so that the broker publishes the last will."""
        if self._client.is_connected():
            self._client.disconnect(
                reasoncode=ReasonCode(
                    PacketTypes.DISCONNECT, "Disconnect with will message"
                )
            )
            self._flush_disconnect()
        self.close()

    def goodbye(self, deadline: float) -> None:
        """Disconnect normally (no last will), flushing until ``deadline``."""
        if self._client.is_connected():
            self._client.disconnect()
            self._flush_disconnect(deadline)
        self.close()

    def _flush_disconnect(self, deadline: float | None = None) -> None:
        # paho closes the socket once DISCONNECT is written; on a throttled
        # link that takes more than the first write.
        end = deadline if deadline is not None else time.monotonic() + TICK_S * 10
        while self._client.socket() is not None and time.monotonic() < end:
            self._client.loop(timeout=TICK_S)

    def close(self) -> None:
        """Close the socket without a goodbye; safe to call twice."""
        if self.lost_reason is None:
            self.lost_reason = "closed by the gateway"
        self._inflight.clear()
        client = self._client
        sock = client.socket()
        if sock is not None:
            try:
                sock.close()
            except OSError as exc:
                _LOGGER.debug("%s: closing socket: %s", self.label, exc)
        # Break the client -> callbacks -> session cycle so paho's finaliser
        # closes its wake-up socket pair as soon as the session is dropped.
        client.on_connect = None
        client.on_disconnect = None
        client.on_publish = None
        client.on_subscribe = None
        client.on_message = None
        client.on_log = None

    # ----- paho callbacks (run inside tick, on the link thread) -----

    def _handle_connect(
        self,
        client: mqtt.Client,
        userdata: Any,
        flags: mqtt.ConnectFlags,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        self._connack = reason_code
        _LOGGER.debug(
            "%s: CONNACK %s (session present: %s)",
            self.label,
            reason_code,
            flags.session_present,
        )

    def _handle_disconnect(
        self,
        client: mqtt.Client,
        userdata: Any,
        flags: mqtt.DisconnectFlags,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        if self.lost_reason is None:
            detail = self._last_paho_error
            self.lost_reason = f"{reason_code}" + (f" ({detail})" if detail else "")

    def _handle_publish(
        self,
        client: mqtt.Client,
        userdata: Any,
        mid: int,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        if mid == self._status_mid:
            self._status_mid = None
            self._acks.status_answered = True
            self._acks.status_acked = not reason_code.is_failure
            if reason_code.is_failure:
                _LOGGER.error(
                    "%s: broker refused the status on %s: %s; check the ACL",
                    self.label,
                    self.topics.status,
                    reason_code,
                )
            return
        event_id = self._inflight.pop(mid, None)
        if event_id is None:
            return
        if reason_code.is_failure:
            self._acks.refused.append(
                (event_id, f"{reason_code} ({reason_code.value})")
            )
        else:
            self._acks.delivered.append(event_id)

    def _handle_subscribe(
        self,
        client: mqtt.Client,
        userdata: Any,
        mid: int,
        reason_codes: list[ReasonCode],
        properties: Properties | None,
    ) -> None:
        wanted = (self.topics.commands, self.topics.announcements)
        for topic, code in zip(wanted, reason_codes, strict=False):
            if code.is_failure:
                _LOGGER.error(
                    "%s: broker refused the subscription to %s: %s; check the ACL",
                    self.label,
                    topic,
                    code,
                )

    def _handle_message(
        self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage
    ) -> None:
        try:
            self._on_inbound(message)
        finally:
            if message.qos > 0:
                client.ack(message.mid, message.qos)

    def _handle_log(
        self, client: mqtt.Client, userdata: Any, level: int, text: str
    ) -> None:
        if level == mqtt.MQTT_LOG_ERR:
            self._last_paho_error = text
            _LOGGER.debug("%s: paho: %s", self.label, text)


def describe(exc: BaseException) -> str:
    """Return a one-line description of a connect failure for the log."""
    if isinstance(exc, BrokerConnectError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"
