"""How errors below the API become HTTP responses, in one place.

=============================  ======  ===============================
raised                         status  why
=============================  ======  ===============================
TokenRejected                  401     with ``WWW-Authenticate: Bearer``
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

import logging

from fastapi import FastAPI, Request
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
    app.add_exception_handler(InvalidCursor, _bad_value)
    app.add_exception_handler(InvalidRecord, _bad_value)
    app.add_exception_handler(CatalogError, _catalog_error)
    app.add_exception_handler(StorageError, _storage_error)
