"""``/api/v1/models/{model_name}``: published model versions and the roll-out.

R&D and admins read what the coordinator recorded when it published (see
``cloud_coordinator.modelrepo``): every version with its source (federated
run, republished, file), its gate figures and whether R&D approved it, and
the newest roll-out step (stage, canaries, stable version). Publishing,
promoting and halting stay on ``cloud-coordinator models ...``, on the host
that holds the signing keys; the API holds none.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path
from pydantic import BaseModel

from ...auth import Role
from ...catalog import ModelRelease, ModelRollout
from ..security import CurrentPrincipal, Services

__all__ = ["router"]

router = APIRouter(prefix="/api/v1", tags=["models"])

_READERS = (Role.RND, Role.ADMIN)


class ReleaseOut(BaseModel):
    """One published model version."""

    version: str
    sha256: str
    size_bytes: int
    targets_version: int
    source: str
    run_id: str | None
    gate_passed: bool
    approved: bool
    figures: dict[str, Any]
    published_utc: dt.datetime | None

    @classmethod
    def of(cls, release: ModelRelease) -> ReleaseOut:
        """Build the body from a stored release."""
        return cls(
            version=release.version,
            sha256=release.sha256,
            size_bytes=release.size_bytes,
            targets_version=release.targets_version,
            source=release.source,
            run_id=release.run_id,
            gate_passed=release.gate_passed,
            approved=release.approved,
            figures=release.figures,
            published_utc=release.published_at,
        )


class RolloutOut(BaseModel):
    """The newest roll-out step."""

    sequence: int
    version: str
    stable_version: str | None
    stage: str
    canary_gateways: list[str]
    canary_share: float
    note: str
    updated_utc: dt.datetime | None

    @classmethod
    def of(cls, rollout: ModelRollout) -> RolloutOut:
        """Build the body from a stored roll-out step."""
        return cls(
            sequence=rollout.sequence,
            version=rollout.version,
            stable_version=rollout.stable_version,
            stage=rollout.stage,
            canary_gateways=list(rollout.canary_gateways),
            canary_share=rollout.canary_share,
            note=rollout.note,
            updated_utc=rollout.updated_at,
        )


class ModelOut(BaseModel):
    """A model family: its versions and where its roll-out stands."""

    model_name: str
    releases: list[ReleaseOut]
    rollout: RolloutOut | None


@router.get("/models/{model_name}", response_model=ModelOut)
def get_model(
    services: Services,
    principal: CurrentPrincipal,
    model_name: Annotated[
        str, Path(min_length=1, max_length=100, pattern=r"^[\w.-]+$")
    ],
) -> ModelOut:
    """Return a model's published versions and its newest roll-out step."""
    if principal.role not in _READERS:
        raise HTTPException(status_code=403, detail="rnd or admin role required")
    releases = services.catalog.list_model_releases(model_name)
    rollout = services.catalog.get_model_rollout(model_name)
    if not releases and rollout is None:
        raise HTTPException(status_code=404, detail="no published model of that name")
    return ModelOut(
        model_name=model_name,
        releases=[ReleaseOut.of(r) for r in releases],
        rollout=None if rollout is None else RolloutOut.of(rollout),
    )
