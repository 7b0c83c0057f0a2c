"""The API's link for verdict commands: connected on first use, reconnected.

The results API must start and serve while the broker is down, so it does
not connect at start-up. :class:`LazyCommandPublisher` connects when the
first verdict is sent (waiting at most ``connect_timeout_s``) and keeps the
link; once connected, paho reconnects by itself. A failed connect raises
:class:`~cloud_coordinator.broker.BrokerUnavailable` to that caller (the
verdict is stored unsent) and the next verdict tries again.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Mapping
from typing import Any

from ..broker import CloudMqttClient
from ..config import CoordinatorConfig

__all__ = ["LazyCommandPublisher"]

_LOGGER = logging.getLogger(__name__)


class LazyCommandPublisher:
    """A :class:`~.verdicts.CommandPublisher` that connects on first use."""

    def __init__(
        self, make_client: Callable[[], CloudMqttClient], connect_timeout_s: float
    ) -> None:
        """Build clients with ``make_client`` (one per connection attempt)."""
        self._make_client = make_client
        self._connect_timeout_s = connect_timeout_s
        self._client: CloudMqttClient | None = None
        self._lock = threading.Lock()

    @classmethod
    def for_api(cls, config: CoordinatorConfig) -> LazyCommandPublisher:
        """Return the publisher of an API process (client id with its pid)."""
        client_id = f"{config.broker.client_id}-api-{os.getpid()}"
        return cls(
            lambda: CloudMqttClient.from_config(config, client_id=client_id),
            config.crashes.connect_timeout_s,
        )

    def _connected(self) -> CloudMqttClient:
        with self._lock:
            if self._client is None:
                client = self._make_client()
                client.connect(self._connect_timeout_s)
                _LOGGER.info("mqtt %s: connected for verdict commands", client.where)
                self._client = client
            return self._client

    def publish(
        self,
        topic: str,
        payload: Mapping[str, Any],
        qos: int = 1,
        retain: bool = False,
        *,
        timeout_s: float | None = None,
    ) -> None:
        """Connect if needed, then publish and wait for the acknowledgement.

        Raises:
            BrokerError: no connection, or no acknowledgement in time.
        """
        self._connected().publish(
            topic, payload, qos=qos, retain=retain, timeout_s=timeout_s
        )

    def close(self) -> None:
        """Disconnect, if connected."""
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()
