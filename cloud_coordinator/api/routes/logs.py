"""``/api/v1/logs/{log_id}/analytics``: a ride's analytics document.

The document is read from the object store and returned as stored
(``ride-analytics/1`` JSON) after its SHA-256 is checked against the
catalog, so a client never gets bytes the gateway did not produce.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query, Response

from edge_agent.upload import ObjectNotFound

from ...catalog import check_identifier
from ..security import NOT_FOUND, CurrentPrincipal, Services, scope_of
from ..services import ANALYTICS_MAX_BYTES

__all__ = ["router"]

_LOGGER = logging.getLogger(__name__)

router = APIRouter(prefix="/api/v1", tags=["data"])

_DOCUMENT: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "the ride analytics JSON (schema ride-analytics/1)",
        "content": {"application/json": {"schema": {"type": "object"}}},
    },
    502: {"description": "the stored document does not match the catalog"},
}


@router.get("/logs/{log_id}/analytics", response_class=Response, responses=_DOCUMENT)
def get_analytics(
    services: Services,
    principal: CurrentPrincipal,
    log_id: Annotated[str, Path(min_length=1, max_length=200)],
    suit_id: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
) -> Response:
    """Return the ride analytics of a log."""
    check_identifier("log_id", log_id)
    if suit_id is not None:
        check_identifier("suit_id", suit_id)
    within = dataclasses.replace(scope_of(principal), suit_id=suit_id)
    item = services.catalog.get_log_analytics(log_id, within=within)
    if item is None:
        raise HTTPException(status_code=404, detail=NOT_FOUND)
    where = f"log {log_id} analytics {item.bucket}/{item.key}"
    if item.size_bytes > ANALYTICS_MAX_BYTES:
        _LOGGER.error("%s: catalogued as %d bytes", where, item.size_bytes)
        raise HTTPException(status_code=502, detail="analytics document too large")
    try:
        body = services.store.get_object(item.bucket, item.key)
    except ObjectNotFound as exc:
        _LOGGER.warning("%s: catalogued but not in the store", where)
        raise HTTPException(status_code=404, detail=NOT_FOUND) from exc
    digest = hashlib.sha256(body).hexdigest()
    if digest != item.sha256_hex:
        _LOGGER.error(
            "%s: SHA-256 %s in the store, %s in the catalog; re-run ingest",
            where,
            digest,
            item.sha256_hex,
        )
        raise HTTPException(
            status_code=502, detail="stored analytics do not match the catalog"
        )
    return Response(
        content=body,
        media_type="application/json",
        headers={"ETag": f'"{item.sha256_hex}"', "X-Object-Id": str(item.object_id)},
    )
