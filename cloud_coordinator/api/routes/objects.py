"""``/api/v1/objects``: list catalogued data, read one entry, get a download link.

Listings are newest first, filtered by kind (raw, analytics, crash), rider,
suit, log, user type, crash flag and a time range on ``sort_time``
(``from`` inclusive, ``to`` exclusive, both with a time zone). Pages are
cut by an opaque cursor; ``limit`` above the hard limit is lowered to it.
A download link is issued only while the object's retention window is
open (410 Gone afterwards).
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query, Request, Response

from ...catalog import ObjectFilter, ObjectKind, UserType
from ..schemas import DownloadLinkOut, ObjectOut, ObjectPage, json_response
from ..security import (
    NOT_FOUND,
    CurrentPrincipal,
    Services,
    restrict_query,
    scope_of,
)

__all__ = ["MAX_OBJECT_ID", "router"]

_LOGGER = logging.getLogger(__name__)

# Object ids are 64-bit signed integers in both catalogs.
MAX_OBJECT_ID = 2**63 - 1
_ID_TEXT = Query(min_length=1, max_length=200)

router = APIRouter(prefix="/api/v1", tags=["data"])

ObjectId = Annotated[int, Path(ge=1, le=MAX_OBJECT_ID)]


@router.get("/objects", response_model=ObjectPage)
def list_objects(
    services: Services,
    principal: CurrentPrincipal,
    kind: ObjectKind | None = None,
    rider_id: Annotated[str | None, _ID_TEXT] = None,
    suit_id: Annotated[str | None, _ID_TEXT] = None,
    log_id: Annotated[str | None, _ID_TEXT] = None,
    user_type: UserType | None = None,
    crash: bool | None = None,
    time_from: Annotated[dt.datetime | None, Query(alias="from")] = None,
    time_to: Annotated[dt.datetime | None, Query(alias="to")] = None,
    limit: Annotated[int | None, Query(ge=1)] = None,
    cursor: Annotated[str | None, Query(min_length=1, max_length=1024)] = None,
) -> Response:
    """List raw, analytics and crash objects the caller may see."""
    query = ObjectFilter(
        kind=kind,
        rider_id=rider_id,
        suit_id=suit_id,
        log_id=log_id,
        user_type=user_type,
        crash=crash,
        time_from=time_from,
        time_to=time_to,
    ).validated()
    query = restrict_query(services.catalog, principal, query)
    settings = services.settings
    page_limit = min(limit or settings.default_page_limit, settings.max_page_limit)
    page = services.catalog.list_objects(query, limit=page_limit, cursor=cursor)
    now = services.clock()
    return json_response(
        ObjectPage(
            items=[ObjectOut.of(item, now) for item in page.items],
            next_cursor=page.next_cursor,
            limit=page_limit,
        )
    )


@router.get("/objects/{object_id}", response_model=ObjectOut)
def get_object(
    services: Services, principal: CurrentPrincipal, object_id: ObjectId
) -> Response:
    """Return one catalogued object."""
    item = services.catalog.get_object(object_id, within=scope_of(principal))
    if item is None:
        raise HTTPException(status_code=404, detail=NOT_FOUND)
    return json_response(ObjectOut.of(item, services.clock()))


@router.get(
    "/objects/{object_id}/download",
    response_model=DownloadLinkOut,
    responses={410: {"description": "the retention window has closed"}},
)
def download_link(
    request: Request,
    services: Services,
    principal: CurrentPrincipal,
    object_id: ObjectId,
) -> DownloadLinkOut:
    """Return a short-lived link to download an object's bytes."""
    item = services.catalog.get_object(object_id, within=scope_of(principal))
    if item is None:
        raise HTTPException(status_code=404, detail=NOT_FOUND)
    now = services.clock()
    if not item.retention_open(now):
        assert item.retention_until is not None
        raise HTTPException(
            status_code=410,
            detail=f"the download window of this {item.kind} object closed at "
            f"{item.retention_until.isoformat()}",
        )
    settings = services.settings
    link = services.presigner.presign(
        item.bucket,
        item.key,
        ttl_s=settings.url_ttl_s,
        now=now,
        base_url=settings.public_url or str(request.base_url),
    )
    _LOGGER.info(
        "object %d (%s/%s): download link for %s %s, valid until %s",
        item.object_id,
        item.bucket,
        item.key,
        principal.role.value,
        principal.subject,
        link.expires_at.isoformat(),
    )
    return DownloadLinkOut(
        object_id=item.object_id,
        url=link.url,
        expires_utc=link.expires_at,
        size_bytes=item.size_bytes,
        sha256=item.sha256_hex,
    )
