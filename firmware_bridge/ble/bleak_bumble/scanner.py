"""bleak scanner backend on an emulated bumble radio.

Pass ``radio.scanner_backend`` as ``backend=`` to :class:`bleak.BleakScanner`;
this class alone has no radio and cannot be used directly.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from bleak.backends.scanner import (
    AdvertisementData,
    AdvertisementDataCallback,
    BaseBleakScanner,
)
from bumble.device import Advertisement

from firmware_bridge.ble.bleak_bumble.services import parse_advert

if TYPE_CHECKING:
    from firmware_bridge.ble.bleak_bumble.radio import GatewayRadio

__all__ = ["BumbleBleakScanner"]

_LOGGER = logging.getLogger(__name__)


class BumbleBleakScanner(BaseBleakScanner):
    """Report adverts heard by a :class:`GatewayRadio` the way bleak expects."""

    radio: ClassVar[GatewayRadio]

    def __init__(
        self,
        detection_callback: AdvertisementDataCallback | None,
        service_uuids: list[str] | None,
        scanning_mode: Literal["active", "passive"] = "active",
        **kwargs: Any,
    ) -> None:
        super().__init__(detection_callback, service_uuids)
        if not hasattr(type(self), "radio"):
            raise TypeError(
                "use GatewayRadio.scanner_backend, not BumbleBleakScanner itself"
            )
        self._scanning_mode = scanning_mode

    async def start(self) -> None:
        """Start receiving adverts (clears what was seen before)."""
        self.seen_devices = {}
        await self.radio.async_add_scanner(self)

    async def stop(self) -> None:
        """Stop receiving adverts."""
        await self.radio.async_remove_scanner(self)

    def on_advertisement(self, advertisement: Advertisement) -> None:
        """Turn one bumble advert into bleak's BLEDevice and AdvertisementData."""
        parsed = parse_advert(
            [(int(t), bytes(d)) for t, d in advertisement.data.ad_structures]
        )
        if not self.is_allowed_uuid(parsed.service_uuids):
            return
        address = advertisement.address.to_string(with_type_qualifier=False)
        data = AdvertisementData(
            local_name=parsed.local_name,
            manufacturer_data=parsed.manufacturer_data,
            service_data=parsed.service_data,
            service_uuids=parsed.service_uuids,
            tx_power=parsed.tx_power,
            rssi=advertisement.rssi,
            platform_data=(advertisement,),
        )
        device = self.create_or_update_device(
            address, address, parsed.local_name, advertisement.address, data
        )
        self.call_detection_callbacks(device, data)
