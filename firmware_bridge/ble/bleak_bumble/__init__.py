"""bleak backend on bumble: run the gateway's bleak code against emulated suits.

Usage::

    radio = await GatewayRadio.async_create(air)
    devices = await BleakScanner.discover(backend=radio.scanner_backend)
    client = BleakClient(devices[0], backend=radio.client_backend)

Only ``backend=`` differs from the code that runs on BlueZ.
"""

from firmware_bridge.ble.bleak_bumble.client import BumbleBleakClient
from firmware_bridge.ble.bleak_bumble.radio import DEFAULT_GATEWAY_MTU, GatewayRadio
from firmware_bridge.ble.bleak_bumble.scanner import BumbleBleakScanner

__all__ = [
    "DEFAULT_GATEWAY_MTU",
    "BumbleBleakClient",
    "BumbleBleakScanner",
    "GatewayRadio",
]
