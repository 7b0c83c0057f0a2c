"""Exceptions of the live device-data path.

Hierarchy::

    DeviceDataError
     ├── MalformedSample     a message is not a valid sample (kept aside)
     └── FlushFailed         a batch could not be committed (store or
                             catalog); its messages stay unacknowledged

Store and catalog errors are mapped to :class:`FlushFailed` in one place,
:mod:`.writer`, with ``raise ... from``.
"""

from __future__ import annotations

__all__ = ["DeviceDataError", "FlushFailed", "MalformedSample"]


class DeviceDataError(Exception):
    """Base class of the device-data path's errors."""


class MalformedSample(DeviceDataError):
    """A device message that cannot be accepted.

    ``reason`` is a short stable code for counting (``not_json``,
    ``bad_timestamp``, ...); the message says what was wrong and where.
    """

    def __init__(self, reason: str, message: str) -> None:
        """Keep the reason code beside the human-readable message."""
        super().__init__(message)
        self.reason = reason


class FlushFailed(DeviceDataError):
    """A batch was not committed; the broker will deliver it again."""
