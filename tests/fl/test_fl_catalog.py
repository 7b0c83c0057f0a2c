"""Federated runs, rounds and training consent in the catalog (both backends)."""

from __future__ import annotations

import datetime as dt
import math

import pytest

from cloud_coordinator.catalog import Catalog, InvalidRecord
from cloud_coordinator.catalog.fl_records import (
    FederatedRound,
    FederatedRun,
    RoundStatus,
    RunState,
    TrainingConsent,
)


def _run(key: str = "run-1") -> FederatedRun:
    return FederatedRun(
        run_key=key,
        requested_by="rnd-alice",
        strategy="fedavg",
        rounds=2,
        min_nodes=3,
        settings={"num-server-rounds": 2, "min-nodes": 3},
    )


def test_fl_run_lifecycle_and_rounds(fl_catalog: Catalog) -> None:
    created = fl_catalog.create_fl_run(_run())
    assert created.state == RunState.STARTING and created.created_at is not None
    with pytest.raises(InvalidRecord, match="exists already"):
        fl_catalog.create_fl_run(_run())

    big_id = 2**64 - 5  # Flower run ids are unsigned 64-bit
    running = fl_catalog.update_fl_run(
        "run-1", state=RunState.RUNNING, flower_run_id=big_id
    )
    assert running is not None and running.flower_run_id == big_id

    fl_catalog.record_fl_round(
        FederatedRound(
            run_key="run-1",
            round=1,
            status=RoundStatus.AGGREGATED,
            sampled=3,
            participants=3,
            declined=0,
            duration_s=12.5,
            train_loss=0.2,
            eval_loss=math.nan,
            eval_recall=1.0,
            metrics={"train": {"train-loss": 0.2}},
        )
    )
    # A retried write of the same round replaces it.
    fl_catalog.record_fl_round(
        FederatedRound(
            run_key="run-1",
            round=1,
            status=RoundStatus.AGGREGATED,
            sampled=3,
            participants=2,
            declined=1,
            duration_s=13.0,
        )
    )
    fl_catalog.record_fl_round(
        FederatedRound(
            run_key="run-1",
            round=2,
            status=RoundStatus.TOO_FEW_REPLIES,
            sampled=3,
            participants=1,
            declined=2,
            duration_s=30.0,
            detail="1 heads received, quorum 3",
        )
    )
    rounds = fl_catalog.list_fl_rounds("run-1")
    assert [(r.round, r.participants, r.status) for r in rounds] == [
        (1, 2, RoundStatus.AGGREGATED),
        (2, 1, RoundStatus.TOO_FEW_REPLIES),
    ]
    with pytest.raises(InvalidRecord, match="unknown federated run"):
        fl_catalog.record_fl_round(
            FederatedRound("nope", 1, RoundStatus.AGGREGATED, 1, 1, 0, 1.0)
        )

    finished = fl_catalog.update_fl_run(
        "run-1", state=RunState.FINISHED, result={"aggregated_rounds": 1}
    )
    assert finished is not None and finished.state == RunState.FINISHED
    assert finished.result == {"aggregated_rounds": 1}
    # A late "running" from a slow writer does not reopen a finished run.
    late = fl_catalog.update_fl_run("run-1", state=RunState.RUNNING)
    assert late is not None and late.state == RunState.FINISHED
    assert fl_catalog.update_fl_run("unknown", state=RunState.FAILED) is None

    fl_catalog.create_fl_run(_run("run-2"))
    assert {r.run_key for r in fl_catalog.list_fl_runs(limit=10)} == {"run-1", "run-2"}


def test_fl_training_consent_stored_and_published(fl_catalog: Catalog) -> None:
    t0 = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.UTC)
    assert fl_catalog.get_training_consent("rider-1") is None
    fl_catalog.set_training_consent(TrainingConsent("rider-1", True, "cmd-1", t0))
    stored = fl_catalog.get_training_consent("rider-1")
    assert stored is not None and stored.opted_out and stored.published_at is None
    assert [c.command_id for c in fl_catalog.list_unpublished_consents()] == ["cmd-1"]

    # A newer choice supersedes the one in flight: marking the old one does nothing.
    fl_catalog.set_training_consent(
        TrainingConsent("rider-1", False, "cmd-2", t0 + dt.timedelta(minutes=1))
    )
    assert not fl_catalog.mark_consent_published("rider-1", "cmd-1")
    assert fl_catalog.mark_consent_published("rider-1", "cmd-2")
    stored = fl_catalog.get_training_consent("rider-1")
    assert stored is not None and not stored.opted_out
    assert stored.published_at is not None
    assert fl_catalog.list_unpublished_consents() == []
    with pytest.raises(InvalidRecord):
        fl_catalog.set_training_consent(TrainingConsent("bad/id", True, "cmd-3", t0))
