"""Find suits that advertise the transfer service."""

from __future__ import annotations

import logging

from bleak import BleakScanner
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import BaseBleakScanner
from bleak.exc import BleakError

from edge_agent.transfer.errors import SuitLinkError
from firmware_bridge.ble.protocol import SERVICE_UUID

__all__ = ["async_find_suits"]

_LOGGER = logging.getLogger(__name__)


async def async_find_suits(
    timeout_s: float, backend: type[BaseBleakScanner] | None = None
) -> list[BLEDevice]:
    """Scan for ``timeout_s`` seconds; return suits advertising the service.

    Args:
        timeout_s: how long to listen for advertisements.
        backend: bleak scanner backend; None picks the platform's (BlueZ on a
            gateway), ``GatewayRadio.scanner_backend`` scans the emulated air.

    Returns:
        The suits heard, sorted by address.  ``BLEDevice.name`` is the
        advertised name: the serial, shortened to 8 bytes if longer
        (``SuitSession.serial`` has the full one after connecting).

    Raises:
        SuitLinkError: the adapter could not scan.
    """
    try:
        if backend is None:
            found = await BleakScanner.discover(
                timeout=timeout_s, return_adv=True, service_uuids=[SERVICE_UUID]
            )
        else:
            found = await BleakScanner.discover(
                timeout=timeout_s,
                return_adv=True,
                service_uuids=[SERVICE_UUID],
                backend=backend,
            )
    except BleakError as error:
        raise SuitLinkError(f"scan for suits failed: {error}") from error
    suits = [
        device
        for device, advert in found.values()
        if SERVICE_UUID in (uuid.lower() for uuid in advert.service_uuids)
    ]
    suits.sort(key=lambda device: device.address)
    _LOGGER.debug("scan: %d suits in %.1f s", len(suits), timeout_s)
    return suits
