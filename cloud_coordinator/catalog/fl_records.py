"""What the catalog keeps about federated learning: runs, rounds, consent.

A :class:`FederatedRun` is one run R&D started (``cloud-coordinator fl
start`` or ``POST /api/v1/fl/runs``), keyed by the catalog's ``run_key``
and linked to the SuperLink's run id once the Control API accepted it. The
ServerApp appends one :class:`FederatedRound` per round with its
participants and figures. A :class:`TrainingConsent` is a rider's choice
about their data being used for training, with the command that carried it
to their gateways and when it was published.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from .errors import InvalidRecord
from .models import check_identifier

__all__ = [
    "FederatedRound",
    "FederatedRun",
    "RoundStatus",
    "RunState",
    "TrainingConsent",
]


class RunState(StrEnum):
    """Where a federated run is."""

    STARTING = "starting"  # recorded, not yet accepted by the SuperLink
    RUNNING = "running"
    FINISHED = "finished"
    FAILED = "failed"

    @property
    def finished(self) -> bool:
        """Return whether the run will not change any more."""
        return self in (RunState.FINISHED, RunState.FAILED)


class RoundStatus(StrEnum):
    """How a round ended."""

    AGGREGATED = "aggregated"
    NO_QUORUM = "no_quorum"  # too few eligible gateways within the wait
    TOO_FEW_REPLIES = "too_few_replies"  # deadline passed below the quorum


@dataclass(frozen=True)
class FederatedRun:
    """One federated run; ``created_at`` / ``updated_at`` set by the catalog."""

    run_key: str
    requested_by: str
    strategy: str
    rounds: int
    min_nodes: int
    state: RunState = RunState.STARTING
    flower_run_id: int | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    detail: str | None = None
    result: dict[str, Any] | None = None
    created_at: dt.datetime | None = None
    updated_at: dt.datetime | None = None

    def validated(self) -> FederatedRun:
        """Return self after checking identifiers and counts.

        Raises:
            InvalidRecord: a field is out of range.
        """
        check_identifier("run_key", self.run_key)
        if not self.requested_by:
            raise InvalidRecord("requested_by must not be empty")
        if self.rounds < 1 or self.min_nodes < 1:
            raise InvalidRecord(
                f"rounds and min_nodes must be >= 1, found {self.rounds}, "
                f"{self.min_nodes}"
            )
        return self


def _finite_or_none(value: float | None) -> float | None:
    if value is None or not math.isfinite(value):
        return None
    return float(value)


@dataclass(frozen=True)
class FederatedRound:
    """One round's outcome and figures (losses are class-weighted log loss)."""

    run_key: str
    round: int
    status: RoundStatus
    sampled: int
    participants: int
    declined: int
    duration_s: float
    train_loss: float | None = None
    eval_loss: float | None = None
    eval_recall: float | None = None
    eval_false_positive_rate: float | None = None
    detail: str | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    recorded_at: dt.datetime | None = None

    def validated(self) -> FederatedRound:
        """Return a copy with non-finite figures as None, after checks.

        Raises:
            InvalidRecord: a count or the round number is out of range.
        """
        check_identifier("run_key", self.run_key)
        if self.round < 1 or min(self.sampled, self.participants, self.declined) < 0:
            raise InvalidRecord(
                f"round {self.round}: round must be >= 1 and counts >= 0"
            )
        return FederatedRound(
            run_key=self.run_key,
            round=self.round,
            status=RoundStatus(self.status),
            sampled=self.sampled,
            participants=self.participants,
            declined=self.declined,
            duration_s=float(self.duration_s),
            train_loss=_finite_or_none(self.train_loss),
            eval_loss=_finite_or_none(self.eval_loss),
            eval_recall=_finite_or_none(self.eval_recall),
            eval_false_positive_rate=_finite_or_none(self.eval_false_positive_rate),
            detail=self.detail,
            metrics=dict(self.metrics),
            recorded_at=self.recorded_at,
        )


@dataclass(frozen=True)
class TrainingConsent:
    """A rider's training choice and the gateway command that carries it."""

    rider_id: str
    opted_out: bool
    command_id: str
    issued_at: dt.datetime
    published_at: dt.datetime | None = None

    def validated(self) -> TrainingConsent:
        """Return self after checking the rider id.

        Raises:
            InvalidRecord: the rider id is not a valid identifier.
        """
        check_identifier("rider_id", self.rider_id)
        if not self.command_id:
            raise InvalidRecord("command_id must not be empty")
        return self
