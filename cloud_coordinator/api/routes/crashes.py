"""``/api/v1/logs/{log_id}/crash-verdict`` and ``/crash-release``.

R&D, technicians (for the professional riders assigned to them) and admins
confirm or reject a detected crash, read the newest verdict, and release
crash data no longer needed (see :mod:`cloud_coordinator.crashes`). A rider
gets 403 for their own crash logs; anything outside the caller's scope, or
a log without a detected crash, is 404. A verdict answers 200 whether or
not its command reached the gateway; ``published`` and ``publish_error``
say which.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query
from pydantic import BaseModel, Field

from ...auth import Principal, Role
from ...catalog import CrashVerdictRecord, Verdict, check_identifier
from ...crashes import CrashLog, find_crash_log, issue_verdict, release_crash_data
from ..security import NOT_FOUND, CurrentPrincipal, Services, scope_of
from .privacy import actor_of

__all__ = ["router"]

_LOGGER = logging.getLogger(__name__)

router = APIRouter(prefix="/api/v1", tags=["crashes"])

LogId = Annotated[str, Path(min_length=1, max_length=200)]
SuitId = Annotated[str | None, Query(min_length=1, max_length=200)]
# A ride is at most a few hours long; an offset beyond a day is a mistake.
MAX_OFFSET_S = 86_400.0


class VerdictIn(BaseModel):
    """A person's verdict on a detected crash."""

    verdict: Verdict
    t_offset_s: float | None = Field(
        default=None,
        ge=0.0,
        le=MAX_OFFSET_S,
        description="seconds from the log's start to the crash, if known",
    )
    note: str | None = Field(default=None, max_length=2000)


class VerdictOut(BaseModel):
    """The newest verdict of a log and whether it reached the gateway."""

    rider_id: str
    suit_id: str
    log_id: str
    verdict: Verdict
    t_offset_s: float | None
    actor: str
    command_id: str
    issued_utc: dt.datetime
    gateway_id: str | None
    published_utc: dt.datetime | None
    published: bool
    publish_error: str | None = None
    note: str | None = None

    @classmethod
    def of(
        cls, record: CrashVerdictRecord, publish_error: str | None = None
    ) -> VerdictOut:
        """Build the body from a stored verdict."""
        return cls(
            rider_id=record.rider_id,
            suit_id=record.suit_id,
            log_id=record.log_id,
            verdict=record.verdict,
            t_offset_s=record.t_offset_s,
            actor=record.actor,
            command_id=record.command_id,
            issued_utc=record.issued_at,
            gateway_id=record.gateway_id,
            published_utc=record.published_at,
            published=record.published_at is not None,
            publish_error=publish_error,
            note=record.note,
        )


class ReleaseOut(BaseModel):
    """The crash objects a release deleted."""

    rider_id: str
    suit_id: str
    log_id: str
    deleted: list[str]


def _crash_log(
    services: Services,
    principal: Principal,
    log_id: str,
    suit_id: str | None,
    *,
    acting: bool,
) -> CrashLog:
    """Return the crash log in the caller's scope; 404 or 403 otherwise."""
    check_identifier("log_id", log_id)
    if suit_id is not None:
        check_identifier("suit_id", suit_id)
    within = dataclasses.replace(scope_of(principal), suit_id=suit_id)
    log = find_crash_log(services.catalog, within, log_id, suit_id)
    if log is None:
        raise HTTPException(status_code=404, detail=NOT_FOUND)
    if acting and principal.role is Role.RIDER:
        raise HTTPException(
            status_code=403, detail="R&D, technicians or admins decide on crashes"
        )
    return log


@router.put(
    "/logs/{log_id}/crash-verdict",
    response_model=VerdictOut,
    responses={403: {"description": "riders may not judge crashes"}},
)
def put_verdict(
    services: Services,
    principal: CurrentPrincipal,
    log_id: LogId,
    body: VerdictIn,
    suit_id: SuitId = None,
) -> VerdictOut:
    """Confirm or reject a detected crash; send the verdict to the gateway."""
    log = _crash_log(services, principal, log_id, suit_id, acting=True)
    lifecycle = services.lifecycle
    outcome = issue_verdict(
        services.catalog,
        services.store,
        lifecycle.publisher,
        lifecycle.broker,
        log,
        body.verdict,
        actor=actor_of(principal),
        now=services.clock(),
        t_offset_s=body.t_offset_s,
        note=body.note,
    )
    record = outcome.record
    if outcome.published:
        record = dataclasses.replace(record, published_at=record.issued_at)
    return VerdictOut.of(record, outcome.publish_error)


@router.get("/logs/{log_id}/crash-verdict", response_model=VerdictOut)
def get_verdict(
    services: Services,
    principal: CurrentPrincipal,
    log_id: LogId,
    suit_id: SuitId = None,
) -> VerdictOut:
    """Return the newest verdict on a log's crash (404: none yet)."""
    log = _crash_log(services, principal, log_id, suit_id, acting=False)
    record = services.catalog.get_crash_verdict(log.rider_id, log.suit_id, log_id)
    if record is None:
        raise HTTPException(status_code=404, detail="no verdict yet")
    return VerdictOut.of(record)


@router.post(
    "/logs/{log_id}/crash-release",
    response_model=ReleaseOut,
    responses={403: {"description": "riders may not release crash data"}},
)
def release(
    services: Services,
    principal: CurrentPrincipal,
    log_id: LogId,
    suit_id: SuitId = None,
) -> ReleaseOut:
    """Delete a log's crash objects (audited); raw and analytics stay."""
    log = _crash_log(services, principal, log_id, suit_id, acting=True)
    deleted = release_crash_data(
        services.catalog,
        services.store,
        services.buckets,
        log,
        actor=actor_of(principal),
    )
    return ReleaseOut(
        rider_id=log.rider_id,
        suit_id=log.suit_id,
        log_id=log_id,
        deleted=[f"{bucket}/{key}" for bucket, key in deleted],
    )
