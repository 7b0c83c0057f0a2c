"""Federated runs for R&D, and riders' training consent.

* ``POST /api/v1/fl/runs`` (rnd, admin): start a run (rounds, quorum,
  strategy, further settings); 202 with the run as recorded. 422 names a
  wrong setting; 503 when ``[fl]`` is not configured or the SuperLink
  refuses or cannot be reached (the run is recorded as failed).
* ``GET /api/v1/fl/runs`` and ``GET /api/v1/fl/runs/{run_key}`` (rnd,
  admin): recent runs; one run with its per-round figures.
* ``PUT /api/v1/riders/{rider_id}/training-consent`` (the rider, admin):
  record a rider's choice and send it to their gateways
  (:mod:`cloud_coordinator.fl.service`); the answer says whether every
  gateway's command was acknowledged (``published``); an unpublished choice
  stays stored and is sent again by ``cloud-coordinator fl consent
  --resend``. ``GET`` returns the stored choice (404: never given).

Another rider's consent answers 404, as other riders' data does.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path
from pydantic import BaseModel, Field

from ...auth import Principal, Role
from ...catalog import check_identifier
from ...catalog.fl_records import TrainingConsent
from ...fl.errors import ControlError, RunConfigError
from ...fl.runs import RunReport, RunRequest
from ...fl.service import FederatedService
from ...fl.settings import STRATEGIES
from ..security import NOT_FOUND, CurrentPrincipal, Services

__all__ = ["router"]

router = APIRouter(prefix="/api/v1", tags=["federated"])

_RND = (Role.RND, Role.ADMIN)
# Longest run R&D may ask for over the API (a run holds gateways' time).
MAX_ROUNDS = 100


class RunIn(BaseModel):
    """A run to start."""

    rounds: int = Field(ge=1, le=MAX_ROUNDS)
    min_nodes: int = Field(ge=1)
    strategy: str = Field(default="fedavg", description=f"one of {STRATEGIES}")
    settings: dict[str, str | int | float | bool] = Field(
        default_factory=dict,
        description="further run settings (cloud_coordinator/fl/settings.py)",
    )


class ConsentIn(BaseModel):
    """A rider's training choice."""

    opted_out: bool


class ConsentOut(BaseModel):
    """A stored training choice and whether the rider's gateways have it."""

    rider_id: str
    opted_out: bool
    command_id: str
    issued_utc: dt.datetime
    published: bool
    published_utc: dt.datetime | None
    gateways: list[str] | None = None
    reason: str | None = None

    @classmethod
    def of(cls, consent: TrainingConsent, **extra: Any) -> ConsentOut:
        """Build the body from a stored choice."""
        return cls(
            rider_id=consent.rider_id,
            opted_out=consent.opted_out,
            command_id=consent.command_id,
            issued_utc=consent.issued_at,
            published=consent.published_at is not None or bool(extra.get("published")),
            published_utc=consent.published_at,
            **{k: v for k, v in extra.items() if k != "published"},
        )


def _require_rnd(principal: Principal) -> None:
    if principal.role not in _RND:
        raise HTTPException(status_code=403, detail="rnd or admin role required")


def _run_body(report: RunReport) -> dict[str, Any]:
    return report.to_dict()


@router.post("/fl/runs", status_code=202)
def start_run(body: RunIn, principal: CurrentPrincipal, services: Services) -> Any:
    """Start a federated run on the SuperLink and record it."""
    _require_rnd(principal)
    federated = services.federated
    if federated is None:
        raise HTTPException(status_code=503, detail="federated runs not configured")
    request = RunRequest(
        rounds=body.rounds,
        min_nodes=body.min_nodes,
        strategy=body.strategy,
        overrides=dict(body.settings),
    )
    try:
        run = federated.start(
            services.catalog,
            request,
            requested_by=f"{principal.role.value}:{principal.subject}",
        )
    except RunConfigError as exc:
        raise HTTPException(status_code=422, detail=str(exc)) from exc
    except ControlError as exc:
        raise HTTPException(status_code=503, detail=str(exc)) from exc
    return _run_body(RunReport(run, []))


@router.get("/fl/runs")
def list_runs(
    principal: CurrentPrincipal, services: Services, limit: int = 50
) -> list[dict[str, Any]]:
    """Return recent runs, newest first."""
    _require_rnd(principal)
    runs = services.catalog.list_fl_runs(limit=limit)
    return [_run_body(RunReport(run, []))["run"] for run in runs]


@router.get("/fl/runs/{run_key}")
def get_run(
    run_key: Annotated[str, Path(max_length=200)],
    principal: CurrentPrincipal,
    services: Services,
) -> Any:
    """Return a run and its per-round figures."""
    _require_rnd(principal)
    report = FederatedService.report(
        services.catalog, check_identifier("run_key", run_key)
    )
    if report is None:
        raise HTTPException(status_code=404, detail=NOT_FOUND)
    return _run_body(report)


def _check_rider(principal: Principal, rider_id: str) -> str:
    check_identifier("rider_id", rider_id)
    if principal.role is Role.ADMIN:
        return rider_id
    if principal.role is Role.RIDER and principal.subject == rider_id:
        return rider_id
    raise HTTPException(status_code=404, detail=NOT_FOUND)


@router.put("/riders/{rider_id}/training-consent")
def put_consent(
    rider_id: Annotated[str, Path(max_length=200)],
    body: ConsentIn,
    principal: CurrentPrincipal,
    services: Services,
) -> ConsentOut:
    """Record the rider's choice and send it to the rider's gateways."""
    rider_id = _check_rider(principal, rider_id)
    outcome = FederatedService.set_consent(
        services.catalog,
        services.lifecycle.publisher,
        services.lifecycle.broker,
        rider_id,
        opted_out=body.opted_out,
        now=services.clock(),
    )
    consent = outcome.consent
    if outcome.published:
        stored = services.catalog.get_training_consent(rider_id)
        consent = stored or dataclasses.replace(consent, published_at=services.clock())
    return ConsentOut.of(
        consent,
        published=outcome.published,
        gateways=outcome.gateways,
        reason=outcome.reason,
    )


@router.get("/riders/{rider_id}/training-consent")
def get_consent(
    rider_id: Annotated[str, Path(max_length=200)],
    principal: CurrentPrincipal,
    services: Services,
) -> ConsentOut:
    """Return the rider's stored training choice."""
    rider_id = _check_rider(principal, rider_id)
    consent = services.catalog.get_training_consent(rider_id)
    if consent is None:
        raise HTTPException(status_code=404, detail=NOT_FOUND)
    return ConsentOut.of(consent)
