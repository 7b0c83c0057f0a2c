"""Emulated suit on an in-process bumble link (tests, demo, benchmarks).

* :class:`VirtualAir` -- the shared radio medium (one bumble LocalLink);
* :class:`EmulatedSuit` -- a suit that advertises, serves the transfer
  protocol and keeps each log until a release with the right SHA-256 (and,
  when it requires bonding, a receipt from its bonded gateway);
* :func:`async_run_emulated_suit` -- run a suit from log files until
  cancelled, optionally handing a controller to another process over HCI/TCP.
"""

from firmware_bridge.ble.suit.air import HciTcpEndpoint, VirtualAir
from firmware_bridge.ble.suit.faults import StreamRecord, SuitFaults, SuitStats
from firmware_bridge.ble.suit.run import async_run_emulated_suit
from firmware_bridge.ble.suit.security import PAIRING_WINDOW_S, SuitGuard
from firmware_bridge.ble.suit.server import EmulatedSuit, LogSource
from firmware_bridge.ble.suit.store import ReleaseEvidence, log_id_for_file

__all__ = [
    "PAIRING_WINDOW_S",
    "EmulatedSuit",
    "HciTcpEndpoint",
    "LogSource",
    "ReleaseEvidence",
    "StreamRecord",
    "SuitFaults",
    "SuitGuard",
    "SuitStats",
    "VirtualAir",
    "async_run_emulated_suit",
    "log_id_for_file",
]
