"""Which rider an online device streams for (schema migration 4).

A mixin of :class:`~.sqlbase.SqlCatalog`, written once for SQLite and
PostgreSQL. The live device-data worker (:mod:`cloud_coordinator.devices`)
looks a device up before it writes the device's samples under the rider's
prefix in the raw bucket; ``cloud-coordinator devices register`` fills it.
"""

from __future__ import annotations

import datetime as dt
from abc import abstractmethod
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

from .errors import InvalidRecord
from .models import check_identifier
from .sql import Dialect

__all__ = ["Device", "DeviceRegistrySql"]

_COLUMNS = ("device_id", "rider_id", "suit_id", "created_at", "updated_at")


@dataclass(frozen=True)
class Device:
    """An online device and the rider (and suit id) its samples belong to.

    ``suit_id`` defaults to the device id: a device that is itself the
    sensor (no suit) files its objects under its own id.
    """

    device_id: str
    rider_id: str
    suit_id: str = ""
    created_at: dt.datetime | None = None
    updated_at: dt.datetime | None = None

    def validated(self) -> Device:
        """Return the device with ``suit_id`` filled in after checking ids.

        Raises:
            InvalidRecord: a malformed id (the message names the field).
        """
        try:
            check_identifier("device_id", self.device_id)
            check_identifier("rider_id", self.rider_id)
            suit_id = self.suit_id or self.device_id
            check_identifier("suit_id", suit_id)
        except ValueError as exc:
            raise InvalidRecord(f"device {self.device_id!r}: {exc}") from exc
        return Device(
            self.device_id, self.rider_id, suit_id, self.created_at, self.updated_at
        )


class DeviceRegistrySql:
    """Device registry methods of the SQL catalog."""

    _dialect: Dialect

    @abstractmethod
    def _transaction(self, *, write: bool) -> AbstractContextManager[Any]:
        """Return a context that runs one transaction and yields its cursor."""

    @abstractmethod
    def _now(self) -> dt.datetime:
        """Return the catalog clock's time in UTC."""

    @abstractmethod
    def _p(self, name: str) -> str:
        """Return the placeholder of parameter ``name``."""

    def _device_from_row(self, row: Any) -> Device:
        values = dict(zip(_COLUMNS, row, strict=True))
        return Device(
            device_id=values["device_id"],
            rider_id=values["rider_id"],
            suit_id=values["suit_id"],
            created_at=self._dialect.time_out(values["created_at"]),
            updated_at=self._dialect.time_out(values["updated_at"]),
        )

    def upsert_device(self, device: Device) -> Device:
        """Register a device or move it to another rider or suit id.

        Raises:
            InvalidRecord: a malformed id.
            CatalogUnavailable: the database cannot be reached.
        """
        device = device.validated()
        now = self._dialect.time_in(self._now())
        with self._transaction(write=True) as cursor:
            cursor.execute(
                f"INSERT INTO devices ({', '.join(_COLUMNS)}) VALUES "
                f"({', '.join(self._p(column) for column in _COLUMNS)}) "
                "ON CONFLICT (device_id) DO UPDATE SET "
                "rider_id = excluded.rider_id, suit_id = excluded.suit_id, "
                "updated_at = excluded.updated_at "
                f"RETURNING {', '.join(_COLUMNS)}",
                {
                    "device_id": device.device_id,
                    "rider_id": device.rider_id,
                    "suit_id": device.suit_id,
                    "created_at": now,
                    "updated_at": now,
                },
            )
            row = cursor.fetchone()
        return self._device_from_row(row)

    def get_device(self, device_id: str) -> Device | None:
        """Return a registered device, or None if unknown.

        Raises:
            InvalidRecord: a malformed id.
            CatalogUnavailable: the database cannot be reached.
        """
        check_identifier("device_id", device_id)
        with self._transaction(write=False) as cursor:
            cursor.execute(
                f"SELECT {', '.join(_COLUMNS)} FROM devices "
                f"WHERE device_id = {self._p('device_id')}",
                {"device_id": device_id},
            )
            row = cursor.fetchone()
        return None if row is None else self._device_from_row(row)

    def list_devices(self, rider_id: str | None = None) -> list[Device]:
        """Return every registered device (one rider's only), by id.

        Raises:
            InvalidRecord: a malformed rider id.
            CatalogUnavailable: the database cannot be reached.
        """
        params: dict[str, Any] = {}
        where = ""
        if rider_id is not None:
            check_identifier("rider_id", rider_id)
            params["rider_id"] = rider_id
            where = f" WHERE rider_id = {self._p('rider_id')}"
        with self._transaction(write=False) as cursor:
            cursor.execute(
                f"SELECT {', '.join(_COLUMNS)} FROM devices{where} ORDER BY device_id",
                params,
            )
            rows = cursor.fetchall()
        return [self._device_from_row(row) for row in rows]
