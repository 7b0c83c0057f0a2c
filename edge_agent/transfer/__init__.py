"""Gateway side of the suit transfer: find suits, read status, pull, release.

Built on bleak's public API (plus ``bleak_retry_connector`` for connects), so
it runs on BlueZ and, with ``backend=`` from
:class:`firmware_bridge.ble.bleak_bumble.GatewayRadio`, on emulated suits.

Bonding: :func:`async_pair_suit` pairs with a suit in pairing mode and keeps
the bond in a :class:`BondStore`; a session given that store releases logs
with a receipt (:class:`UploadReceipt`).  :class:`AdapterLock` makes one
process the owner of a Bluetooth adapter.

Errors::

    TransferError
     +-- SuitNotFoundError
     +-- SuitLinkError
     +-- SuitCommandError
     |    +-- ReleaseRefusedError
     |    +-- SuitNotBondedError
     +-- PairingError
     |    +-- NotInPairingModeError
     +-- SuitProtocolError
     +-- TransferStalledError
     +-- AdapterBusyError
"""

from edge_agent.transfer.adapter_lock import AdapterLock, default_runtime_dir
from edge_agent.transfer.bonds import BOND_FILE, BondFileError, BondStore, SuitBond
from edge_agent.transfer.discovery import async_find_suits
from edge_agent.transfer.errors import (
    AdapterBusyError,
    NotInPairingModeError,
    PairingError,
    ReleaseRefusedError,
    SuitCommandError,
    SuitLinkError,
    SuitNotBondedError,
    SuitNotFoundError,
    SuitProtocolError,
    TransferError,
    TransferStalledError,
)
from edge_agent.transfer.file_sink import FileLogSink, SinkError
from edge_agent.transfer.models import (
    PullStats,
    SuitLogEntry,
    SuitStatus,
    UploadReceipt,
)
from edge_agent.transfer.pairing import async_pair_suit
from edge_agent.transfer.session import SuitSession
from edge_agent.transfer.sink import LogSink

__all__ = [
    "BOND_FILE",
    "AdapterBusyError",
    "AdapterLock",
    "BondFileError",
    "BondStore",
    "FileLogSink",
    "LogSink",
    "NotInPairingModeError",
    "PairingError",
    "PullStats",
    "ReleaseRefusedError",
    "SinkError",
    "SuitBond",
    "SuitCommandError",
    "SuitLinkError",
    "SuitLogEntry",
    "SuitNotBondedError",
    "SuitNotFoundError",
    "SuitProtocolError",
    "SuitSession",
    "SuitStatus",
    "TransferError",
    "TransferStalledError",
    "UploadReceipt",
    "async_find_suits",
    "async_pair_suit",
    "default_runtime_dir",
]
