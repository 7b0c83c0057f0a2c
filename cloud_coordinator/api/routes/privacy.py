"""``/api/v1/riders/{rider_id}/export`` and ``/data``: a rider's data rights.

A rider may export or erase their own data, an admin anyone's. Anyone
else asking about a rider outside their scope gets the usual 404; a
technician or R&D asking about a rider they can see gets 403 (these rights
are the rider's). The export is a tar stream (``rider-export/1``, see
:mod:`cloud_coordinator.privacy.export`); the erasure answers with what it
deleted. Both are audited.
"""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path
from fastapi.responses import StreamingResponse

from ...auth import Principal, Role
from ...catalog import check_identifier
from ...privacy import erase_rider, iter_export, plan_export
from ..security import NOT_FOUND, CurrentPrincipal, Services, visible_rider

__all__ = ["actor_of", "router"]

_LOGGER = logging.getLogger(__name__)

router = APIRouter(prefix="/api/v1", tags=["privacy"])

RiderId = Annotated[str, Path(min_length=1, max_length=200)]


def actor_of(principal: Principal) -> str:
    """Return how the audit log names the caller (``role:subject``)."""
    return f"{principal.role.value}:{principal.subject}"


def _require_owner_or_admin(
    services: Services, principal: Principal, rider_id: str
) -> None:
    """Answer 404 outside the caller's scope, 403 for a non-owner in scope."""
    check_identifier("rider_id", rider_id)
    if principal.role is Role.ADMIN:
        return
    if principal.role is Role.RIDER:
        if principal.subject != rider_id:
            raise HTTPException(status_code=404, detail=NOT_FOUND)
        return
    visible_rider(services.catalog, principal, rider_id)
    raise HTTPException(
        status_code=403, detail="only the rider or an admin may do this"
    )


@router.get(
    "/riders/{rider_id}/export",
    response_class=StreamingResponse,
    responses={
        200: {
            "content": {"application/x-tar": {}},
            "description": "a tar of manifest.json and objects/{bucket}/{key}",
        },
        403: {"description": "only the rider or an admin"},
    },
)
def export_rider(
    services: Services, principal: CurrentPrincipal, rider_id: RiderId
) -> StreamingResponse:
    """Stream every object and catalog row of a rider as a tar archive."""
    _require_owner_or_admin(services, principal, rider_id)
    plan = plan_export(
        services.catalog,
        services.store,
        services.buckets,
        rider_id,
        now=services.clock(),
    )
    _LOGGER.info(
        "rider %s: export of %d files started by %s",
        rider_id,
        len(plan.files),
        actor_of(principal),
    )
    stream = iter_export(
        services.catalog, services.store, plan, actor=actor_of(principal)
    )
    return StreamingResponse(
        stream,
        media_type="application/x-tar",
        headers={
            "Content-Disposition": 'attachment; filename="rider-export.tar"',
            "Cache-Control": "no-store",
        },
    )


@router.delete(
    "/riders/{rider_id}/data",
    responses={403: {"description": "only the rider or an admin"}},
)
def erase_rider_data(
    services: Services, principal: CurrentPrincipal, rider_id: RiderId
) -> dict[str, Any]:
    """Erase a rider's raw, analytics, crash and archive data and records."""
    _require_owner_or_admin(services, principal, rider_id)
    report = erase_rider(
        services.catalog,
        services.store,
        services.buckets,
        rider_id,
        actor=actor_of(principal),
    )
    return report.as_dict()
