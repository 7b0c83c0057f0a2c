"""Exceptions of the cloud's MQTT link.

Hierarchy::

    BrokerError
     ├── BrokerConfigError      a TLS or password file cannot be loaded
     ├── BrokerUnavailable      no connection (refused, TLS failed, timed out)
     └── PublishFailed          a message was not acknowledged
          └── PublishTimeout    no PUBACK within the timeout

paho-mqtt's return codes and exceptions are mapped into this tree in
:mod:`.client`, always with ``raise ... from`` where there is a cause.
"""

from __future__ import annotations

__all__ = [
    "BrokerConfigError",
    "BrokerError",
    "BrokerUnavailable",
    "PublishFailed",
    "PublishTimeout",
]


class BrokerError(Exception):
    """Base class of every error of the cloud's MQTT link."""


class BrokerConfigError(BrokerError):
    """The ``[broker]`` configuration names a file that cannot be used."""


class BrokerUnavailable(BrokerError):
    """The broker cannot be reached or refused the connection; retry later."""


class PublishFailed(BrokerError):
    """A message was not delivered to the broker."""


class PublishTimeout(PublishFailed):
    """The broker did not acknowledge a message within the timeout."""
