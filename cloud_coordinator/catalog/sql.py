"""SQL shared by both backends: columns, dialect differences, query building.

The two backends run the same statements; a :class:`Dialect` supplies the
few differences: the parameter placeholder (``:name`` for sqlite3,
``%(name)s`` for psycopg), how a time is stored (integer microseconds since
the epoch in SQLite, ``timestamptz`` in PostgreSQL), row locking and
booleans. Listings are keyset-paginated on ``(sort_time, object_id)``, the
order of the ``*_time`` indexes.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .models import CatalogObject, ObjectFilter, ObjectKind, Rider, UserType

__all__ = [
    "OBJECT_COLUMNS",
    "RIDER_COLUMNS",
    "Dialect",
    "micros_to_time",
    "object_from_row",
    "object_where",
    "rider_from_row",
    "time_to_micros",
]

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_MICROSECOND = dt.timedelta(microseconds=1)

# Column order of every object SELECT and RETURNING; object_from_row relies
# on it.
OBJECT_COLUMNS: tuple[str, ...] = (
    "object_id",
    "bucket",
    "object_key",
    "kind",
    "object_type",
    "rider_id",
    "suit_id",
    "log_id",
    "sha256",
    "size_bytes",
    "user_type",
    "product",
    "log_start",
    "log_end",
    "sort_time",
    "crash",
    "model_version",
    "software_version",
    "sample_count",
    "created_at",
    "updated_at",
    "retention_until",
    "gateway_id",
)
RIDER_COLUMNS: tuple[str, ...] = ("rider_id", "user_type", "product", "technician_id")
_TIME_COLUMNS = frozenset(
    {"log_start", "log_end", "sort_time", "created_at", "updated_at", "retention_until"}
)


def time_to_micros(value: dt.datetime) -> int:
    """Return an aware datetime as integer microseconds since the epoch."""
    return (value - EPOCH) // _MICROSECOND


def micros_to_time(value: int) -> dt.datetime:
    """Return integer microseconds since the epoch as an aware UTC datetime."""
    return EPOCH + dt.timedelta(microseconds=value)


@dataclass(frozen=True)
class Dialect:
    """What differs between the SQLite and the PostgreSQL statements."""

    name: str
    placeholder: str  # format string with one {name} field
    times_as_micros: bool
    for_update: str

    def p(self, name: str) -> str:
        """Return the placeholder of parameter ``name``."""
        return self.placeholder.format(name=name)

    def time_in(self, value: dt.datetime | None) -> Any:
        """Return a time as the driver stores it."""
        if value is None or not self.times_as_micros:
            return value
        return time_to_micros(value)

    def time_out(self, value: Any) -> dt.datetime | None:
        """Return a stored time as an aware UTC datetime."""
        if value is None:
            return None
        if self.times_as_micros:
            return micros_to_time(int(value))
        stored: dt.datetime = value
        return stored.astimezone(dt.UTC)


def object_from_row(dialect: Dialect, row: Sequence[Any]) -> CatalogObject:
    """Return the object of a row selected with ``OBJECT_COLUMNS``."""
    values = dict(zip(OBJECT_COLUMNS, row, strict=True))
    for name in _TIME_COLUMNS:
        values[name] = dialect.time_out(values[name])
    crash = values["crash"]
    user_type = values["user_type"]
    return CatalogObject(
        object_id=int(values["object_id"]),
        bucket=values["bucket"],
        key=values["object_key"],
        kind=ObjectKind(values["kind"]),
        object_type=values["object_type"],
        rider_id=values["rider_id"],
        suit_id=values["suit_id"],
        log_id=values["log_id"],
        sha256_hex=values["sha256"],
        size_bytes=int(values["size_bytes"]),
        user_type=None if user_type is None else UserType(user_type),
        product=values["product"],
        log_start=values["log_start"],
        log_end=values["log_end"],
        sort_time=values["sort_time"],
        crash=None if crash is None else bool(crash),
        model_version=values["model_version"],
        software_version=values["software_version"],
        sample_count=None
        if values["sample_count"] is None
        else int(values["sample_count"]),
        created_at=values["created_at"],
        updated_at=values["updated_at"],
        retention_until=values["retention_until"],
        gateway_id=values["gateway_id"],
    )


def rider_from_row(row: Sequence[Any]) -> Rider:
    """Return the rider of a row selected with ``RIDER_COLUMNS``."""
    rider_id, user_type, product, technician_id = row
    return Rider(rider_id, UserType(user_type), product, technician_id)


def object_where(
    dialect: Dialect, query: ObjectFilter, params: dict[str, Any]
) -> list[str]:
    """Return the WHERE conditions of ``query``, adding their parameters."""
    conditions: list[str] = []
    equal = {
        "kind": query.kind,
        "rider_id": query.rider_id,
        "suit_id": query.suit_id,
        "log_id": query.log_id,
        "user_type": query.user_type,
    }
    for column, value in equal.items():
        if value is not None:
            params[f"f_{column}"] = str(value)
            conditions.append(f"{column} = {dialect.p('f_' + column)}")
    if query.crash is not None:
        params["f_crash"] = query.crash
        conditions.append(f"crash = {dialect.p('f_crash')}")
    if query.time_from is not None:
        params["f_from"] = dialect.time_in(query.time_from)
        conditions.append(f"sort_time >= {dialect.p('f_from')}")
    if query.time_to is not None:
        params["f_to"] = dialect.time_in(query.time_to)
        conditions.append(f"sort_time < {dialect.p('f_to')}")
    if query.technician_id is not None:
        params["f_technician"] = query.technician_id
        conditions.append(
            "rider_id IN (SELECT rider_id FROM riders WHERE technician_id = "
            f"{dialect.p('f_technician')} AND user_type = 'professional')"
        )
    return conditions
