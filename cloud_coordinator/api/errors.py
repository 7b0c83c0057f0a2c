"""How errors below the API become HTTP responses, in one place.

=============================  ======  ===============================
raised                         status  why
=============================  ======  ===============================
TokenRejected                  401     with ``WWW-Authenticate: Bearer``
RequestValidationError         422     rejected values echoed up to 200
                                       characters
InvalidCursor, InvalidRecord   400     the client sent a bad value
CatalogUnavailable             503     with ``Retry-After``
ObjectStoreUnavailable         503     with ``Retry-After``
StoreAccessDenied              502     the API's store credentials
other CatalogError             500     logged with the request
other StorageError             502     logged with the request
=============================  ======  ===============================

Handlers never put tokens, keys or secrets in a response.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from edge_agent.upload import ObjectStoreUnavailable, StorageError, StoreAccessDenied

from ..auth import TokenRejected
from ..catalog import (
    CatalogError,
    CatalogUnavailable,
    InvalidCursor,
    InvalidRecord,
)

__all__ = ["RETRY_AFTER_S", "install_error_handlers"]

_LOGGER = logging.getLogger(__name__)

# Retry-After of a 503: the catalog or store is restarting or overloaded.
RETRY_AFTER_S = 5
# A 422 echoes what it rejected up to this many characters: enough to see the
# mistake, not a megabyte body sent back.
ECHO_CHARS = 200


def _where(request: Request) -> str:
    return f"{request.method} {request.url.path}"


async def _token_rejected(request: Request, exc: Exception) -> JSONResponse:
    _LOGGER.info("%s: token rejected: %s", _where(request), exc)
    return JSONResponse(
        {"detail": str(exc)},
        status_code=401,
        headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
    )


async def _bad_value(request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse({"detail": str(exc)}, status_code=400)


def _echo(value: Any) -> Any:
    """Return a rejected value as a 422 shows it: as is, or clipped."""
    if isinstance(value, str):
        if len(value) <= ECHO_CHARS:
            return value
        return f"{value[:ECHO_CHARS]}... ({len(value)} characters)"
    plain = jsonable_encoder(value)
    text = json.dumps(plain)
    if len(text) <= ECHO_CHARS:
        return plain
    return f"{text[:ECHO_CHARS]}... ({len(text)} characters of JSON)"


async def _invalid_request(request: Request, exc: Exception) -> JSONResponse:
    errors = exc.errors() if isinstance(exc, RequestValidationError) else []
    detail = []
    for error in errors:
        item = {key: error[key] for key in ("type", "loc", "msg") if key in error}
        if "input" in error:
            item["input"] = _echo(error["input"])
        detail.append(item)
    return JSONResponse({"detail": jsonable_encoder(detail)}, status_code=422)


async def _catalog_error(request: Request, exc: Exception) -> JSONResponse:
    if isinstance(exc, CatalogUnavailable):
        _LOGGER.warning("%s: catalog unavailable: %s", _where(request), exc)
        return JSONResponse(
            {"detail": "catalog unavailable; retry later"},
            status_code=503,
            headers={"Retry-After": str(RETRY_AFTER_S)},
        )
    _LOGGER.error("%s: catalog error: %s", _where(request), exc)
    return JSONResponse({"detail": "catalog error"}, status_code=500)


async def _storage_error(request: Request, exc: Exception) -> JSONResponse:
    if isinstance(exc, ObjectStoreUnavailable):
        _LOGGER.warning("%s: object store unavailable: %s", _where(request), exc)
        return JSONResponse(
            {"detail": "object store unavailable; retry later"},
            status_code=503,
            headers={"Retry-After": str(RETRY_AFTER_S)},
        )
    if isinstance(exc, StoreAccessDenied):
        _LOGGER.error("%s: object store refused the API: %s", _where(request), exc)
    else:
        _LOGGER.error("%s: object store error: %s", _where(request), exc)
    return JSONResponse({"detail": "object store error"}, status_code=502)


def install_error_handlers(app: FastAPI) -> None:
    """Register the mapping of the module docstring on ``app``."""
    app.add_exception_handler(TokenRejected, _token_rejected)
    app.add_exception_handler(RequestValidationError, _invalid_request)
    app.add_exception_handler(InvalidCursor, _bad_value)
    app.add_exception_handler(InvalidRecord, _bad_value)
    app.add_exception_handler(CatalogError, _catalog_error)
    app.add_exception_handler(StorageError, _storage_error)
