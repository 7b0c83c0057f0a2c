"""Health, readiness and the caller's identity.

``/health`` answers as long as the process serves requests (no token, no
dependencies: a liveness probe must not fail because the database does).
``/ready`` checks that the catalog answers a query and the object store a
HEAD request, each bounded in time, and answers 503 otherwise; like every
route but ``/health`` it needs a token.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import anyio
from fastapi import APIRouter
from fastapi.responses import JSONResponse

from ...auth import Role
from ..schemas import HealthOut, MeOut, ReadyOut
from ..security import CurrentPrincipal, Services

__all__ = ["READY_PROBE_KEY", "router"]

_LOGGER = logging.getLogger(__name__)

# Key the readiness check asks the store about; it need not exist, the
# store only has to answer.
READY_PROBE_KEY = "ready-probe"

router = APIRouter()


@router.get("/health", response_model=HealthOut, tags=["system"])
async def health() -> HealthOut:
    """Answer that the process is alive."""
    return HealthOut()


async def _check(name: str, probe: Callable[[], object], timeout_s: float) -> str:
    try:
        with anyio.fail_after(timeout_s):
            await anyio.to_thread.run_sync(probe, abandon_on_cancel=True)
    except TimeoutError:
        _LOGGER.warning("ready: %s did not answer within %.1f s", name, timeout_s)
        return f"no answer within {timeout_s:.1f} s"
    except Exception as exc:  # any failure means "not ready"; logged, not raised
        _LOGGER.warning("ready: %s failed: %s", name, exc)
        return f"failed: {type(exc).__name__}"
    return "ok"


@router.get(
    "/ready",
    response_model=ReadyOut,
    tags=["system"],
    responses={503: {"model": ReadyOut, "description": "a dependency failed"}},
)
async def ready(services: Services, principal: CurrentPrincipal) -> JSONResponse:
    """Check the catalog and the object store answer."""
    timeout_s = services.settings.ready_timeout_s
    checks = {
        "catalog": await _check("catalog", services.catalog.ping, timeout_s),
        "store": await _check(
            "store",
            lambda: services.store.head_object(
                services.buckets.analytics, READY_PROBE_KEY
            ),
            timeout_s,
        ),
    }
    ok = all(value == "ok" for value in checks.values())
    body = ReadyOut(status="ready" if ok else "not ready", checks=checks)
    return JSONResponse(body.model_dump(), status_code=200 if ok else 503)


@router.get("/api/v1/me", response_model=MeOut, tags=["system"])
def me(services: Services, principal: CurrentPrincipal) -> MeOut:
    """Return who the token belongs to (and a rider's own record)."""
    rider = None
    if principal.role is Role.RIDER:
        rider = services.catalog.get_rider(principal.subject)
    return MeOut.of(principal, rider)
