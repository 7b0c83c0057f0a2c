"""Run an emulated suit from log files (``firmware-bridge emulate``).

With ``hci_tcp_port`` set, a second controller joins the suit's air and is
served over HCI on ``127.0.0.1:PORT``: a gateway process whose bumble host
opens ``tcp-client:127.0.0.1:PORT`` then scans for and connects to the suit
as if both shared one radio.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from pathlib import Path

from firmware_bridge.ble.suit.air import HciTcpEndpoint, VirtualAir
from firmware_bridge.ble.suit.server import EmulatedSuit

__all__ = ["async_run_emulated_suit"]

_LOGGER = logging.getLogger(__name__)


async def async_run_emulated_suit(
    log_paths: Sequence[Path],
    serial: str,
    *,
    battery_pct: int | None = 80,
    charging: bool = True,
    air: VirtualAir | None = None,
    hci_tcp_port: int | None = None,
    stop: asyncio.Event | None = None,
    on_ready: Callable[[EmulatedSuit, HciTcpEndpoint | None], None] | None = None,
    require_bond: bool = False,
    bond_path: Path | None = None,
    pairing_window_s: float | None = None,
) -> None:
    """Advertise a suit holding ``log_paths`` until ``stop`` is set or cancelled.

    Args:
        log_paths: log files, or directories whose files are all served.
        serial: the suit's serial number (advertised, and in the DIS).
        battery_pct: battery level reported in the status characteristic.
        charging: charging flag reported in the status characteristic.
        air: the medium to join; a new private one when None.
        hci_tcp_port: also serve a gateway controller over HCI on this
            loopback port (0 picks a free one, reported through ``on_ready``).
        stop: event that ends the run; without it the run lasts until the
            task is cancelled.
        on_ready: called once the suit advertises (and the port listens).
        require_bond: serve logs and releases only to a bonded gateway.
        bond_path: file keeping the suit's bonds across runs (None: memory).
        pairing_window_s: open pairing mode for this long right at start, as
            if the rider held the button; the passkey the suit would display
            is logged at INFO.
    """
    air = air or VirtualAir()
    suit = EmulatedSuit(
        serial,
        list(log_paths),
        battery_pct=battery_pct,
        charging=charging,
        require_bond=require_bond,
        bond_path=bond_path,
    )
    endpoint: HciTcpEndpoint | None = None
    await suit.async_start(air)
    try:
        if pairing_window_s is not None:
            suit.enter_pairing_mode(pairing_window_s)
        if hci_tcp_port is not None:
            endpoint = await air.async_expose_hci_tcp(
                f"gateway-hci-{serial}", hci_tcp_port
            )
        if on_ready is not None:
            on_ready(suit, endpoint)
        await (stop or asyncio.Event()).wait()
    finally:
        if endpoint is not None:
            await endpoint.async_close()
        await suit.async_stop()
        _LOGGER.info(
            "suit %s: emulation ended, %d logs erased", serial, len(suit.erased_log_ids)
        )
