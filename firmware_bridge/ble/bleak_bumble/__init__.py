"""bleak backend on bumble: run the gateway's bleak code against emulated suits.

Usage::

    radio = await GatewayRadio.async_create(air)
    devices = await BleakScanner.discover(backend=radio.scanner_backend)
    client = BleakClient(devices[0], backend=radio.client_backend)

Only ``backend=`` differs from the code that runs on BlueZ.  Pairing works as
with BlueZ's agent: set ``radio.passkey_provider`` to answer passkey prompts;
bonds live in the radio's key store (``keystore_path=`` keeps them in a file).
"""

from firmware_bridge.ble.bleak_bumble.client import (
    BumbleBleakClient,
    BumbleGATTProtocolError,
)
from firmware_bridge.ble.bleak_bumble.pairing import PasskeyProvider
from firmware_bridge.ble.bleak_bumble.radio import DEFAULT_GATEWAY_MTU, GatewayRadio
from firmware_bridge.ble.bleak_bumble.scanner import BumbleBleakScanner

__all__ = [
    "DEFAULT_GATEWAY_MTU",
    "BumbleBleakClient",
    "BumbleBleakScanner",
    "BumbleGATTProtocolError",
    "GatewayRadio",
    "PasskeyProvider",
]
