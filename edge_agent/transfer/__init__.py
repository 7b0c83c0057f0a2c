"""Gateway side of the suit transfer: find suits, read status, pull, release.

Built on bleak's public API (plus ``bleak_retry_connector`` for connects), so
it runs on BlueZ and, with ``backend=`` from
:class:`firmware_bridge.ble.bleak_bumble.GatewayRadio`, on emulated suits.

Errors::

    TransferError
     +-- SuitNotFoundError
     +-- SuitLinkError
     +-- SuitCommandError
     |    +-- ReleaseRefusedError
     +-- SuitProtocolError
     +-- TransferStalledError
"""

from edge_agent.transfer.discovery import async_find_suits
from edge_agent.transfer.errors import (
    ReleaseRefusedError,
    SuitCommandError,
    SuitLinkError,
    SuitNotFoundError,
    SuitProtocolError,
    TransferError,
    TransferStalledError,
)
from edge_agent.transfer.file_sink import FileLogSink, SinkError
from edge_agent.transfer.models import PullStats, SuitLogEntry, SuitStatus
from edge_agent.transfer.session import SuitSession
from edge_agent.transfer.sink import LogSink

__all__ = [
    "FileLogSink",
    "LogSink",
    "PullStats",
    "ReleaseRefusedError",
    "SinkError",
    "SuitCommandError",
    "SuitLinkError",
    "SuitLogEntry",
    "SuitNotFoundError",
    "SuitProtocolError",
    "SuitSession",
    "SuitStatus",
    "TransferError",
    "TransferStalledError",
    "async_find_suits",
]
