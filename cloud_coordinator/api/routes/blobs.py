"""``/api/v1/blobs/{bucket}/{key}``: bytes behind the API's own download links.

Only with the local-directory store, or a store with client-side envelope
encryption (with S3 and Azure the links point at the store). An encrypted
object is decrypted frame by frame as it streams (no range support).
The request carries no bearer token but the link's ``expires`` and
``signature`` (see :mod:`..downloads`). Checks run in this order: the key's
shape (400 for empty, ``.`` or ``..`` segments, backslashes, NUL), the
signature and expiry (403), then the object (404). The file is streamed
from disk, with HTTP range support for resumed downloads.
"""

from __future__ import annotations

import logging
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, HTTPException, Query
from fastapi.responses import FileResponse, Response, StreamingResponse

from edge_agent.upload import InvalidObjectKey, LocalDirStore, ObjectNotFound
from edge_agent.upload.envelope import EnvelopeStore

from ..downloads import LinkRejected
from ..security import NOT_FOUND, Services

__all__ = ["router"]

_LOGGER = logging.getLogger(__name__)

router = APIRouter(prefix="/api/v1", tags=["downloads"])


def _check_key(bucket: str, key: str) -> None:
    segments = key.split("/")
    if (
        not bucket
        or "/" in bucket
        or bucket in (".", "..")
        or len(key.encode()) > 1024
        or any(segment in ("", ".", "..") for segment in segments)
        or "\\" in key
        or "\0" in key
    ):
        raise HTTPException(status_code=400, detail="malformed bucket or key")


def _decrypted(store: EnvelopeStore, bucket: str, key: str) -> Response:
    """Stream an envelope-encrypted object's plaintext."""
    try:
        opened = store.open_plaintext(bucket, key)
    except InvalidObjectKey as exc:
        raise HTTPException(status_code=400, detail="malformed bucket or key") from exc
    except ObjectNotFound as exc:
        raise HTTPException(status_code=404, detail=NOT_FOUND) from exc
    if opened is None:
        raise HTTPException(status_code=404, detail=NOT_FOUND)
    info, chunks = opened
    _LOGGER.info("blob %s/%s: serving %d decrypted bytes", bucket, key, info.size_bytes)
    name = key.rsplit("/", 1)[-1]
    return StreamingResponse(
        chunks,
        media_type=info.content_type or "application/octet-stream",
        headers={
            "Content-Length": str(info.size_bytes),
            "Content-Disposition": f"attachment; filename*=utf-8''{quote(name)}",
        },
    )


@router.get(
    "/blobs/{bucket}/{key:path}",
    response_class=FileResponse,
    responses={
        200: {"content": {"application/octet-stream": {}}},
        403: {"description": "bad signature or expired link"},
    },
)
def get_blob(
    services: Services,
    bucket: str,
    key: str,
    expires: Annotated[int, Query(ge=0, le=2**62)],
    signature: Annotated[str, Query(pattern=r"^[0-9a-fA-F]{64}$")],
) -> Response:
    """Stream an object's bytes for a signed, unexpired download link."""
    signer = services.local_links
    store = services.store
    if signer is None or not isinstance(store, LocalDirStore | EnvelopeStore):
        raise HTTPException(status_code=404, detail=NOT_FOUND)
    _check_key(bucket, key)
    try:
        signer.check(bucket, key, expires, signature, services.clock())
    except LinkRejected as exc:
        _LOGGER.info("blob %s/%s: link refused: %s", bucket, key, exc)
        raise HTTPException(status_code=403, detail=str(exc)) from exc
    if isinstance(store, EnvelopeStore):
        return _decrypted(store, bucket, key)
    try:
        info = store.head_object(bucket, key)
    except InvalidObjectKey as exc:
        raise HTTPException(status_code=400, detail="malformed bucket or key") from exc
    except ObjectNotFound as exc:  # the bucket itself is gone
        raise HTTPException(status_code=404, detail=NOT_FOUND) from exc
    root = (store.root / bucket).resolve()
    path = (root / key).resolve()
    if info is None or not path.is_relative_to(root) or not path.is_file():
        raise HTTPException(status_code=404, detail=NOT_FOUND)
    _LOGGER.info("blob %s/%s: serving %d bytes", bucket, key, info.size_bytes)
    return FileResponse(
        path,
        media_type=info.content_type or "application/octet-stream",
        filename=path.name,
    )
