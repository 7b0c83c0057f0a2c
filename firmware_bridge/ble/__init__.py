"""BLE transfer between a suit and its gateway: protocol, emulated suit, backend.

* :mod:`firmware_bridge.ble.protocol` -- the GATT protocol's messages;
* :mod:`firmware_bridge.ble.suit` -- an emulated suit on a bumble link;
* :mod:`firmware_bridge.ble.bleak_bumble` -- a bleak backend on bumble, so the
  gateway's bleak code runs unchanged against the emulated suit.
"""
