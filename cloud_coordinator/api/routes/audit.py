"""``/api/v1/audit``: the audit log of deletions and decisions, oldest first.

Each entry records who deleted or decided what (retention, erasure, crash
release, verdicts, exports) and when; it names objects, never their
contents, and outlives the data it describes. A rider reads the entries
about themself, a technician those about one of their riders (``rider_id``
required), R&D and admins every entry.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query
from pydantic import BaseModel

from ...auth import Role
from ...catalog import AuditAction, AuditEntry, check_identifier
from ..security import CurrentPrincipal, Services, visible_rider

__all__ = ["router"]

router = APIRouter(prefix="/api/v1", tags=["privacy"])


class AuditOut(BaseModel):
    """One audit entry."""

    audit_id: int
    audited_utc: dt.datetime
    action: AuditAction
    actor: str
    rider_id: str | None
    suit_id: str | None
    log_id: str | None
    bucket: str | None
    key: str | None
    object_id: int | None
    sha256: str | None
    size_bytes: int | None
    detail: str | None

    @classmethod
    def of(cls, entry: AuditEntry) -> AuditOut:
        """Build the body from a stored entry."""
        assert entry.audit_id is not None and entry.at is not None
        return cls(
            audit_id=entry.audit_id,
            audited_utc=entry.at,
            action=entry.action,
            actor=entry.actor,
            rider_id=entry.rider_id,
            suit_id=entry.suit_id,
            log_id=entry.log_id,
            bucket=entry.bucket,
            key=entry.key,
            object_id=entry.object_id,
            sha256=entry.sha256_hex,
            size_bytes=entry.size_bytes,
            detail=entry.detail,
        )


class AuditPage(BaseModel):
    """One page of audit entries."""

    items: list[AuditOut]
    next_cursor: str | None
    limit: int


@router.get("/audit", response_model=AuditPage)
def list_audit(
    services: Services,
    principal: CurrentPrincipal,
    rider_id: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
    limit: Annotated[int | None, Query(ge=1)] = None,
    cursor: Annotated[str | None, Query(min_length=1, max_length=1024)] = None,
) -> AuditPage:
    """List audit entries in the caller's scope, oldest first."""
    if rider_id is not None:
        check_identifier("rider_id", rider_id)
    if principal.role is Role.RIDER:
        if rider_id not in (None, principal.subject):
            raise HTTPException(status_code=404, detail="not found")
        rider_id = principal.subject
    elif principal.role is Role.TECHNICIAN:
        if rider_id is None:
            raise HTTPException(
                status_code=422, detail="technicians list one rider's audit: rider_id"
            )
        visible_rider(services.catalog, principal, rider_id)
    settings = services.settings
    page_limit = min(limit or settings.default_page_limit, settings.max_page_limit)
    page = services.catalog.list_audit(
        rider_id=rider_id, limit=page_limit, cursor=cursor
    )
    return AuditPage(
        items=[AuditOut.of(entry) for entry in page.items],
        next_cursor=page.next_cursor,
        limit=page_limit,
    )
