"""Who is asking, and what they may see.

Every route but ``/health`` and the signed-link blob route depends on
:func:`current_principal`, which verifies the bearer token (401 otherwise).
What a principal may see is a catalog filter (:func:`scope_of`) added to
every query, so a row outside the caller's scope is never read at all. A
rider asking for another rider's data, or a technician for a rider not
assigned to them, gets the same 404 as for data that does not exist
(:data:`NOT_FOUND`): the answer must not tell whether it exists.
"""

from __future__ import annotations

import dataclasses
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from ..auth import Principal, Role, TokenRejected
from ..catalog import Catalog, ObjectFilter, Rider, UserType
from .services import ApiServices

__all__ = [
    "NOT_FOUND",
    "CurrentPrincipal",
    "Services",
    "current_principal",
    "get_services",
    "require_admin",
    "restrict_query",
    "scope_of",
    "visible_rider",
]

NOT_FOUND = "not found"

_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="bearer",
    bearerFormat="JWT",
    description="A token from `cloud-coordinator token` (HS256 or ES256 JWT).",
)


async def get_services(request: Request) -> ApiServices:
    """Return the services the app was built with.

    Async on purpose: FastAPI runs a plain-function dependency in its thread
    pool, a hop this one-line lookup does not need.
    """
    services: ApiServices = request.app.state.services
    return services


Services = Annotated[ApiServices, Depends(get_services)]


async def current_principal(
    services: Services,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """Return the verified caller, or answer 401.

    Raises:
        TokenRejected: no bearer token, or the token does not verify.
    """
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise TokenRejected("a bearer token is required (Authorization: Bearer ...)")
    return services.verifier.verify(credentials.credentials)


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]


def require_admin(principal: CurrentPrincipal) -> Principal:
    """Return the caller if an admin, else answer 403 (whatever the target)."""
    if principal.role is not Role.ADMIN:
        raise HTTPException(status_code=403, detail="admin role required")
    return principal


def scope_of(principal: Principal) -> ObjectFilter:
    """Return the filter that limits every query to what ``principal`` sees."""
    if principal.role is Role.RIDER:
        return ObjectFilter(rider_id=principal.subject)
    if principal.role is Role.TECHNICIAN:
        return ObjectFilter(technician_id=principal.subject)
    return ObjectFilter()


def visible_rider(catalog: Catalog, principal: Principal, rider_id: str) -> Rider:
    """Return a rider the caller may see, or answer 404.

    A rider sees their own record, a technician the professional riders
    assigned to them, R&D and admins everyone.
    """
    rider = catalog.get_rider(rider_id)
    if principal.role is Role.RIDER:
        allowed = rider_id == principal.subject
    elif principal.role is Role.TECHNICIAN:
        allowed = (
            rider is not None
            and rider.user_type is UserType.PROFESSIONAL
            and rider.technician_id == principal.subject
        )
    else:
        allowed = True
    if rider is None or not allowed:
        raise HTTPException(status_code=404, detail=NOT_FOUND)
    return rider


def restrict_query(
    catalog: Catalog, principal: Principal, query: ObjectFilter
) -> ObjectFilter:
    """Return ``query`` limited to the caller's scope, or answer 404.

    Asking for a rider outside the scope is a 404 rather than an empty
    page, the same answer as for a rider that does not exist.
    """
    if query.rider_id is not None and principal.role is Role.RIDER:
        if query.rider_id != principal.subject:
            raise HTTPException(status_code=404, detail=NOT_FOUND)
    elif query.rider_id is not None and principal.role is Role.TECHNICIAN:
        visible_rider(catalog, principal, query.rider_id)
    scope = scope_of(principal)
    return dataclasses.replace(
        query,
        rider_id=scope.rider_id or query.rider_id,
        technician_id=scope.technician_id,
    )
