"""``/api/v1/jobs``: calculate analytics for a log uploaded without them.

``POST /api/v1/jobs`` with either ``object_id`` (a catalogued raw CSV) or
``archive_key`` (a file in the archive bucket, ``{rider}/{suit}/{upload}/
{name}``, as ``upload-archive`` stores it) answers 202 with a job to poll
at ``GET /api/v1/jobs/{job_id}``; the work runs in the background (see
:mod:`cloud_coordinator.jobs`). Unit options apply to CSV files whose
header does not declare units, as for ``edge-agent ingest``. Callers may
start and read jobs on data in their scope; anything else is 404.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Path, Response
from pydantic import BaseModel, Field

from edge_agent.ingest import FIELDS, UnitOptions

from ...auth import Principal, Role
from ...catalog import (
    JobRecord,
    JobState,
    ObjectFilter,
    ObjectKind,
    check_identifier,
)
from ...jobs import AnalyticsSource, JobRequest
from ..security import NOT_FOUND, CurrentPrincipal, Services, scope_of, visible_rider
from .privacy import actor_of

__all__ = ["router"]

_LOGGER = logging.getLogger(__name__)

router = APIRouter(prefix="/api/v1", tags=["jobs"])


class JobIn(BaseModel):
    """An analytics job: one source, and units for CSVs that lack them."""

    kind: Literal["analytics"] = "analytics"
    object_id: int | None = Field(default=None, ge=1, le=2**63 - 1)
    archive_key: str | None = Field(default=None, min_length=7, max_length=1024)
    time_unit: str | None = Field(default=None, max_length=20)
    accel_unit: str | None = Field(default=None, max_length=20)
    gyro_unit: str | None = Field(default=None, max_length=20)
    mag_unit: str | None = Field(default=None, max_length=20)
    speed_unit: str | None = Field(default=None, max_length=20)
    time_reference: Literal["relative", "unix"] = "relative"
    recompute: bool = Field(
        default=False,
        description="for object_id: replace analytics the log already has",
    )
    columns: dict[str, str] = Field(
        default_factory=dict,
        max_length=len(FIELDS),
        description=f"FIELD -> CSV header overrides; fields: {', '.join(FIELDS)}",
    )


class JobOut(BaseModel):
    """A job's state, and its result once finished."""

    job_id: str
    kind: str
    state: JobState
    rider_id: str
    suit_id: str
    source: str
    log_id: str | None
    created_utc: dt.datetime
    updated_utc: dt.datetime
    result: dict[str, Any] | None
    error: str | None
    href: str

    @classmethod
    def of(cls, job: JobRecord) -> JobOut:
        """Build the body from a stored job."""
        return cls(
            job_id=job.job_id,
            kind=job.kind,
            state=job.state,
            rider_id=job.rider_id,
            suit_id=job.suit_id,
            source=f"{job.source_bucket}/{job.source_key}",
            log_id=job.log_id,
            created_utc=job.created_at,
            updated_utc=job.updated_at,
            result=job.result,
            error=job.error,
            href=f"/api/v1/jobs/{job.job_id}",
        )


def _require_visible(services: Services, principal: Principal, rider_id: str) -> None:
    if principal.role is Role.RIDER:
        if principal.subject != rider_id:
            raise HTTPException(status_code=404, detail=NOT_FOUND)
    elif principal.role is Role.TECHNICIAN:
        visible_rider(services.catalog, principal, rider_id)


def _source(services: Services, principal: Principal, body: JobIn) -> AnalyticsSource:
    if (body.object_id is None) == (body.archive_key is None):
        raise HTTPException(
            status_code=422, detail="give exactly one of object_id and archive_key"
        )
    if body.object_id is not None:
        item = services.catalog.get_object(body.object_id, within=scope_of(principal))
        if item is None:
            raise HTTPException(status_code=404, detail=NOT_FOUND)
        if item.kind is not ObjectKind.RAW:
            raise HTTPException(
                status_code=422,
                detail=f"object {item.object_id} is {item.kind.value} data; "
                "analytics are calculated from raw or archive files",
            )
        existing = services.catalog.get_log_analytics(
            item.log_id,
            within=ObjectFilter(rider_id=item.rider_id, suit_id=item.suit_id),
        )
        if existing is not None and not body.recompute:
            raise HTTPException(
                status_code=409,
                detail=f"log {item.log_id} already has analytics (object "
                f"{existing.object_id}); set recompute to replace them",
            )
        return AnalyticsSource(
            item.bucket, item.key, item.rider_id, item.suit_id, item.log_id, False
        )
    assert body.archive_key is not None
    parts = body.archive_key.split("/")
    if len(parts) != 4:
        raise HTTPException(
            status_code=422,
            detail="archive_key must be {rider_id}/{suit_id}/{upload_id}/{file name}",
        )
    names = ("rider_id", "suit_id", "upload_id", "file name")
    for name, value in zip(names, parts, strict=True):
        check_identifier(name, value)
    _require_visible(services, principal, parts[0])
    bucket = services.buckets.archive
    if services.store.head_object(bucket, body.archive_key) is None:
        raise HTTPException(status_code=404, detail=NOT_FOUND)
    return AnalyticsSource(bucket, body.archive_key, parts[0], parts[1])


@router.post(
    "/jobs",
    status_code=202,
    response_model=JobOut,
    responses={
        409: {"description": "the log has analytics already (see recompute)"},
        503: {"description": "background jobs are not enabled here"},
    },
)
def create_job(
    services: Services, principal: CurrentPrincipal, body: JobIn, response: Response
) -> JobOut:
    """Start calculating the analytics of a raw or archived file."""
    runner = services.lifecycle.jobs
    if runner is None:
        raise HTTPException(
            status_code=503, detail="background jobs are not enabled on this server"
        )
    try:
        units = UnitOptions(
            time_unit=body.time_unit,
            accel_unit=body.accel_unit,
            gyro_unit=body.gyro_unit,
            mag_unit=body.mag_unit,
            speed_unit=body.speed_unit,
            time_reference=body.time_reference,
        )
    except ValueError as exc:
        raise HTTPException(status_code=422, detail=str(exc)) from exc
    unknown = sorted(set(body.columns) - set(FIELDS))
    if unknown:
        raise HTTPException(
            status_code=422,
            detail=f"columns: unknown fields {unknown}; known: {list(FIELDS)}",
        )
    source = _source(services, principal, body)
    job = runner.submit(
        JobRequest(source, actor_of(principal), units, dict(body.columns) or None)
    )
    response.headers["Location"] = f"/api/v1/jobs/{job.job_id}"
    return JobOut.of(job)


@router.get("/jobs/{job_id}", response_model=JobOut)
def get_job(
    services: Services,
    principal: CurrentPrincipal,
    job_id: Annotated[str, Path(pattern=r"^[0-9a-f]{32}$")],
) -> JobOut:
    """Return a job's state and, once finished, its result or error."""
    job = services.catalog.get_job(job_id)
    if job is None:
        raise HTTPException(status_code=404, detail=NOT_FOUND)
    try:
        _require_visible(services, principal, job.rider_id)
    except HTTPException:
        raise HTTPException(status_code=404, detail=NOT_FOUND) from None
    return JobOut.of(job)
