"""Build the results API: a FastAPI app on the services it is given.

Routes (OpenAPI at ``/openapi.json``, interactive docs at ``/docs``)::

    GET /health                                 liveness, no token
    GET /ready                                  catalog and store answer
    GET /api/v1/me                              the caller's identity
    GET /api/v1/objects                         list data (filters, cursor)
    GET /api/v1/objects/{object_id}             one catalogued object
    GET /api/v1/objects/{object_id}/download    short-lived download link
    GET /api/v1/logs/{log_id}/analytics         a ride's analytics JSON
    GET /api/v1/riders                          riders in the caller's scope
    GET /api/v1/riders/{rider_id}               one rider
    PUT /api/v1/riders/{rider_id}               create/update a rider (admin)
    GET /api/v1/blobs/{bucket}/{key}            bytes of a signed local link
    GET /api/v1/riders/{rider_id}/export        a rider's data as a tar stream
    DELETE /api/v1/riders/{rider_id}/data       erase a rider's data (audited)
    PUT /api/v1/logs/{log_id}/crash-verdict     confirm/reject a crash (to gateway)
    GET /api/v1/logs/{log_id}/crash-verdict     the newest verdict
    POST /api/v1/logs/{log_id}/crash-release    delete a log's crash data (audited)
    POST /api/v1/jobs                           calculate analytics (background)
    GET /api/v1/jobs/{job_id}                   a job's state and result
    GET /api/v1/audit                           deletions and decisions (audit)
    GET /api/v1/models/{model_name}             published versions, roll-out (R&D)
    POST /api/v1/fl/runs                        start a federated run (R&D)
    GET /api/v1/fl/runs                         recent federated runs (R&D)
    GET /api/v1/fl/runs/{run_key}               a run and its per-round figures (R&D)
    PUT /api/v1/riders/{rider_id}/training-consent  a rider's training choice
    GET /api/v1/riders/{rider_id}/training-consent  the stored choice
    WS  /api/v1/notifications/ws                the caller's notifications

Handlers that touch the catalog or the store are plain functions, which
FastAPI runs in its thread pool, so blocking drivers never stall the event
loop.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib import metadata

from fastapi import FastAPI

from .errors import install_error_handlers
from .routes import (
    blobs_router,
    logs_router,
    objects_router,
    riders_router,
    system_router,
)
from .routes.audit import router as audit_router
from .routes.crashes import router as crashes_router
from .routes.federated import router as federated_router
from .routes.jobs import router as jobs_router
from .routes.models import router as models_router
from .routes.notifications import router as notifications_router
from .routes.privacy import router as privacy_router
from .services import ApiServices

__all__ = ["API_TITLE", "create_app"]

API_TITLE = "SuitLink results API"


def _version() -> str:
    try:
        return metadata.version("suitlink")
    except metadata.PackageNotFoundError:
        return "0+unknown"


def create_app(services: ApiServices, *, close_catalog: bool = False) -> FastAPI:
    """Return the results API app serving from ``services``.

    With ``close_catalog`` the app closes the catalog when the server shuts
    down (for apps that own their services, as uvicorn workers do).
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            if close_catalog:
                services.catalog.close()

    app = FastAPI(
        title=API_TITLE,
        version=_version(),
        description="Riders', technicians' and R&D's access to ride data.",
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.services = services
    install_error_handlers(app)
    for router in (
        system_router,
        objects_router,
        logs_router,
        riders_router,
        blobs_router,
        privacy_router,
        crashes_router,
        jobs_router,
        audit_router,
        models_router,
        federated_router,
        notifications_router,
    ):
        app.include_router(router)
    return app
