"""``/api/v1/riders``: user type, product and technician of riders.

Readers see the riders in their scope (a rider only themself); only an
admin may create or change a rider, which is how professional riders get
their technician.
"""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query

from ...auth import Principal, Role
from ...catalog import Rider, check_identifier
from ..schemas import RiderIn, RiderOut, RiderPage
from ..security import CurrentPrincipal, Services, require_admin, visible_rider

__all__ = ["router"]

_LOGGER = logging.getLogger(__name__)

router = APIRouter(prefix="/api/v1", tags=["riders"])

RiderId = Annotated[str, Path(min_length=1, max_length=200)]


@router.get("/riders", response_model=RiderPage)
def list_riders(
    services: Services,
    principal: CurrentPrincipal,
    limit: Annotated[int | None, Query(ge=1)] = None,
    cursor: Annotated[str | None, Query(min_length=1, max_length=1024)] = None,
) -> RiderPage:
    """List the riders the caller may see, by id."""
    settings = services.settings
    page_limit = min(limit or settings.default_page_limit, settings.max_page_limit)
    if principal.role is Role.RIDER:
        own = services.catalog.get_rider(principal.subject)
        items = [] if own is None or cursor else [RiderOut.of(own)]
        return RiderPage(items=items, next_cursor=None, limit=page_limit)
    technician = principal.subject if principal.role is Role.TECHNICIAN else None
    page = services.catalog.list_riders(
        technician_id=technician, limit=page_limit, cursor=cursor
    )
    return RiderPage(
        items=[RiderOut.of(rider) for rider in page.items],
        next_cursor=page.next_cursor,
        limit=page_limit,
    )


@router.get("/riders/{rider_id}", response_model=RiderOut)
def get_rider(
    services: Services, principal: CurrentPrincipal, rider_id: RiderId
) -> RiderOut:
    """Return one rider."""
    check_identifier("rider_id", rider_id)
    return RiderOut.of(visible_rider(services.catalog, principal, rider_id))


@router.put(
    "/riders/{rider_id}",
    response_model=RiderOut,
    responses={403: {"description": "admin role required"}},
)
def put_rider(
    services: Services,
    admin: Annotated[Principal, Depends(require_admin)],
    rider_id: RiderId,
    body: RiderIn,
) -> RiderOut:
    """Create or update a rider (admin only)."""
    rider = services.catalog.upsert_rider(
        Rider(
            rider_id=check_identifier("rider_id", rider_id),
            user_type=body.user_type,
            product=body.product,
            technician_id=body.technician_id,
        )
    )
    _LOGGER.info(
        "rider %s: set to %s, product %s, technician %s by admin %s",
        rider.rider_id,
        rider.user_type.value,
        rider.product,
        rider.technician_id,
        admin.subject,
    )
    return RiderOut.of(rider)
