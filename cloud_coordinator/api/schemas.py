"""Request and response bodies of the results API (they shape the OpenAPI).

Times are ISO 8601 in UTC with a ``_utc`` suffix in the name; sizes carry
``_bytes``. Field names follow the catalog and the ride analytics JSON.
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

from fastapi import Response
from pydantic import BaseModel, ConfigDict, Field

from ..auth import Principal
from ..catalog import CatalogObject, ObjectKind, Rider, UserType

__all__ = [
    "DownloadLinkOut",
    "HealthOut",
    "MeOut",
    "ObjectOut",
    "ObjectPage",
    "ReadyOut",
    "RiderIn",
    "RiderOut",
    "RiderPage",
    "json_response",
]


def json_response(body: BaseModel) -> Response:
    """Return ``body`` serialised once, as a JSON response.

    FastAPI would otherwise validate a returned model against the route's
    ``response_model`` again before serialising it; the models here are
    built from typed catalog rows, so that second pass only costs time (a
    third of a listing's CPU). The ``response_model`` still documents the
    route in the OpenAPI.
    """
    return Response(content=body.model_dump_json(), media_type="application/json")


class ObjectOut(BaseModel):
    """One catalogued object."""

    object_id: int
    kind: ObjectKind
    object_type: str = Field(description="gateway name: raw_csv, analytics, ...")
    bucket: str
    key: str
    rider_id: str
    suit_id: str
    log_id: str
    user_type: UserType | None
    product: str | None
    log_start_utc: dt.datetime | None
    log_end_utc: dt.datetime | None
    sort_time_utc: dt.datetime = Field(
        description="log start, or catalogue time when the log had no wall clock"
    )
    crash: bool | None = Field(description="crash detected; null: not judged")
    size_bytes: int
    sha256: str
    model_version: str | None
    software_version: str | None
    sample_count: int | None
    created_utc: dt.datetime
    retention_until_utc: dt.datetime | None = Field(
        description="raw data downloadable until then; null: kept"
    )
    downloadable: bool = Field(description="the retention window is open now")

    @classmethod
    def of(cls, item: CatalogObject, now: dt.datetime) -> ObjectOut:
        """Return the response body of a catalog row."""
        return cls(
            object_id=item.object_id,
            kind=item.kind,
            object_type=item.object_type,
            bucket=item.bucket,
            key=item.key,
            rider_id=item.rider_id,
            suit_id=item.suit_id,
            log_id=item.log_id,
            user_type=item.user_type,
            product=item.product,
            log_start_utc=item.log_start,
            log_end_utc=item.log_end,
            sort_time_utc=item.sort_time,
            crash=item.crash,
            size_bytes=item.size_bytes,
            sha256=item.sha256_hex,
            model_version=item.model_version,
            software_version=item.software_version,
            sample_count=item.sample_count,
            created_utc=item.created_at,
            retention_until_utc=item.retention_until,
            downloadable=item.retention_open(now),
        )


class ObjectPage(BaseModel):
    """A page of objects; pass ``next_cursor`` back to get the next one."""

    items: list[ObjectOut]
    next_cursor: str | None = Field(description="null on the last page")
    limit: int = Field(description="page size applied (after the hard limit)")


class DownloadLinkOut(BaseModel):
    """A short-lived link to GET one object's bytes, no token needed."""

    object_id: int
    url: str
    method: Literal["GET"] = "GET"
    expires_utc: dt.datetime
    size_bytes: int
    sha256: str


class RiderOut(BaseModel):
    """A rider's user type, product and technician."""

    rider_id: str
    user_type: UserType
    product: str | None
    technician_id: str | None

    @classmethod
    def of(cls, rider: Rider) -> RiderOut:
        """Return the response body of a rider."""
        return cls(
            rider_id=rider.rider_id,
            user_type=rider.user_type,
            product=rider.product,
            technician_id=rider.technician_id,
        )


class RiderIn(BaseModel):
    """What an admin sets on a rider."""

    model_config = ConfigDict(extra="forbid")

    user_type: UserType
    product: str | None = Field(default=None, min_length=1, max_length=64)
    technician_id: str | None = Field(default=None, min_length=1, max_length=200)


class RiderPage(BaseModel):
    """A page of riders."""

    items: list[RiderOut]
    next_cursor: str | None
    limit: int


class MeOut(BaseModel):
    """Who the token belongs to."""

    subject: str
    role: str
    expires_utc: dt.datetime
    rider: RiderOut | None = Field(description="for a rider token, their record")

    @classmethod
    def of(cls, principal: Principal, rider: Rider | None) -> MeOut:
        """Return the response body for ``principal``."""
        return cls(
            subject=principal.subject,
            role=principal.role.value,
            expires_utc=principal.expires_at,
            rider=None if rider is None else RiderOut.of(rider),
        )


class HealthOut(BaseModel):
    """Liveness: the process serves requests."""

    status: Literal["ok"] = "ok"


class ReadyOut(BaseModel):
    """Readiness: the catalog and the object store answer."""

    status: Literal["ready", "not ready"]
    checks: dict[str, str]
