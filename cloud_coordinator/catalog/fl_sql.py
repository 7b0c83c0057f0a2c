"""Federated runs, rounds and training consent on the shared SQL.

A mixin of :class:`~.sqlbase.SqlCatalog` (schema migration 5), written once
for SQLite and PostgreSQL with the catalog's :class:`~.sql.Dialect`. Round
records are keyed by run and round number, so a ServerApp that records a
round twice (a retried write) leaves one row.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from abc import abstractmethod
from contextlib import AbstractContextManager
from typing import Any

from .errors import InvalidRecord
from .fl_records import (
    FederatedRound,
    FederatedRun,
    RoundStatus,
    RunState,
    TrainingConsent,
)
from .models import check_identifier
from .sql import Dialect

__all__ = ["FederatedSql"]

_RUN_COLUMNS = (
    "run_key",
    "flower_run_id",
    "state",
    "requested_by",
    "strategy",
    "rounds",
    "min_nodes",
    "settings",
    "detail",
    "result",
    "created_at",
    "updated_at",
)
_ROUND_COLUMNS = (
    "run_key",
    "round",
    "status",
    "sampled",
    "participants",
    "declined",
    "duration_s",
    "train_loss",
    "eval_loss",
    "eval_recall",
    "eval_false_positive_rate",
    "detail",
    "metrics",
    "recorded_at",
)
_CONSENT_COLUMNS = ("rider_id", "opted_out", "command_id", "issued_at", "published_at")
# Newest runs a listing returns at most.
MAX_RUNS_LISTED = 200


def _json_out(text: Any) -> Any:
    return None if text is None else json.loads(text)


class FederatedSql:
    """Run, round and consent methods of the SQL catalog."""

    _dialect: Dialect

    @abstractmethod
    def _transaction(self, *, write: bool) -> AbstractContextManager[Any]:
        """Return a context that runs one transaction and yields its cursor."""

    @abstractmethod
    def _now(self) -> dt.datetime:
        """Return the catalog clock's time in UTC."""

    @abstractmethod
    def _p(self, name: str) -> str:
        """Return the placeholder of parameter ``name``."""

    def _placeholders(self, names: tuple[str, ...]) -> str:
        return ", ".join(self._p(name) for name in names)

    # -- runs ------------------------------------------------------------------

    def _run_from_row(self, row: Any) -> FederatedRun:
        v = dict(zip(_RUN_COLUMNS, row, strict=True))
        return FederatedRun(
            run_key=v["run_key"],
            flower_run_id=None
            if v["flower_run_id"] is None
            else int(v["flower_run_id"]),
            state=RunState(v["state"]),
            requested_by=v["requested_by"],
            strategy=v["strategy"],
            rounds=int(v["rounds"]),
            min_nodes=int(v["min_nodes"]),
            settings=_json_out(v["settings"]) or {},
            detail=v["detail"],
            result=_json_out(v["result"]),
            created_at=self._dialect.time_out(v["created_at"]),
            updated_at=self._dialect.time_out(v["updated_at"]),
        )

    def create_fl_run(self, run: FederatedRun) -> FederatedRun:
        """Record a new run; return it with its times.

        Raises:
            InvalidRecord: a malformed field, or the run key exists.
        """
        run = run.validated()
        now = self._now()
        values = {
            "run_key": run.run_key,
            "flower_run_id": None
            if run.flower_run_id is None
            else str(run.flower_run_id),
            "state": str(run.state),
            "requested_by": run.requested_by,
            "strategy": run.strategy,
            "rounds": run.rounds,
            "min_nodes": run.min_nodes,
            "settings": json.dumps(run.settings, sort_keys=True),
            "detail": run.detail,
            "result": None if run.result is None else json.dumps(run.result),
            "created_at": self._dialect.time_in(now),
            "updated_at": self._dialect.time_in(now),
        }
        with self._transaction(write=True) as cursor:
            cursor.execute(
                f"SELECT 1 FROM fl_runs WHERE run_key = {self._p('run_key')}",
                {"run_key": run.run_key},
            )
            if cursor.fetchone() is not None:
                raise InvalidRecord(f"federated run {run.run_key!r} exists already")
            cursor.execute(
                f"INSERT INTO fl_runs ({', '.join(_RUN_COLUMNS)}) "
                f"VALUES ({self._placeholders(_RUN_COLUMNS)})",
                values,
            )
        return dataclasses.replace(run, created_at=now, updated_at=now)

    def update_fl_run(
        self,
        run_key: str,
        *,
        state: RunState,
        flower_run_id: int | None = None,
        detail: str | None = None,
        result: dict[str, Any] | None = None,
    ) -> FederatedRun | None:
        """Set a run's state (and the fields given); return it, None if unknown.

        A finished run keeps its end state: a late "running" is ignored.
        """
        check_identifier("run_key", run_key)
        params: dict[str, Any] = {
            "run_key": run_key,
            "state": str(RunState(state)),
            "updated_at": self._dialect.time_in(self._now()),
        }
        sets = [f"state = {self._p('state')}", f"updated_at = {self._p('updated_at')}"]
        if flower_run_id is not None:
            params["flower_run_id"] = str(flower_run_id)
            sets.append(f"flower_run_id = {self._p('flower_run_id')}")
        if detail is not None:
            params["detail"] = detail
            sets.append(f"detail = {self._p('detail')}")
        if result is not None:
            params["result"] = json.dumps(result)
            sets.append(f"result = {self._p('result')}")
        with self._transaction(write=True) as cursor:
            cursor.execute(
                f"UPDATE fl_runs SET {', '.join(sets)} "
                f"WHERE run_key = {self._p('run_key')} "
                "AND state NOT IN ('finished', 'failed')",
                params,
            )
        return self.get_fl_run(run_key)

    def get_fl_run(self, run_key: str) -> FederatedRun | None:
        """Return one run, None if unknown."""
        check_identifier("run_key", run_key)
        with self._transaction(write=False) as cursor:
            cursor.execute(
                f"SELECT {', '.join(_RUN_COLUMNS)} FROM fl_runs "
                f"WHERE run_key = {self._p('run_key')}",
                {"run_key": run_key},
            )
            row = cursor.fetchone()
        return None if row is None else self._run_from_row(row)

    def list_fl_runs(self, *, limit: int = 50) -> list[FederatedRun]:
        """Return the newest runs first."""
        limit = max(1, min(int(limit), MAX_RUNS_LISTED))
        with self._transaction(write=False) as cursor:
            cursor.execute(
                f"SELECT {', '.join(_RUN_COLUMNS)} FROM fl_runs "
                f"ORDER BY created_at DESC, run_key LIMIT {self._p('limit')}",
                {"limit": limit},
            )
            rows = cursor.fetchall()
        return [self._run_from_row(row) for row in rows]

    # -- rounds ----------------------------------------------------------------

    def record_fl_round(self, record: FederatedRound) -> FederatedRound:
        """Store a round's outcome (replacing an earlier record of it).

        Raises:
            InvalidRecord: a malformed field or an unknown run.
        """
        record = record.validated()
        now = self._now()
        values = {
            "run_key": record.run_key,
            "round": record.round,
            "status": str(record.status),
            "sampled": record.sampled,
            "participants": record.participants,
            "declined": record.declined,
            "duration_s": record.duration_s,
            "train_loss": record.train_loss,
            "eval_loss": record.eval_loss,
            "eval_recall": record.eval_recall,
            "eval_false_positive_rate": record.eval_false_positive_rate,
            "detail": record.detail,
            "metrics": json.dumps(record.metrics, sort_keys=True, default=float),
            "recorded_at": self._dialect.time_in(now),
        }
        updates = ", ".join(
            f"{c} = excluded.{c}"
            for c in _ROUND_COLUMNS
            if c not in ("run_key", "round")
        )
        with self._transaction(write=True) as cursor:
            cursor.execute(
                f"SELECT 1 FROM fl_runs WHERE run_key = {self._p('run_key')}",
                {"run_key": record.run_key},
            )
            if cursor.fetchone() is None:
                raise InvalidRecord(
                    f"round of unknown federated run {record.run_key!r}"
                )
            cursor.execute(
                f"INSERT INTO fl_rounds ({', '.join(_ROUND_COLUMNS)}) "
                f"VALUES ({self._placeholders(_ROUND_COLUMNS)}) "
                f"ON CONFLICT (run_key, round) DO UPDATE SET {updates}",
                values,
            )
        return dataclasses.replace(record, recorded_at=now)

    def list_fl_rounds(self, run_key: str) -> list[FederatedRound]:
        """Return a run's rounds in order."""
        check_identifier("run_key", run_key)
        with self._transaction(write=False) as cursor:
            cursor.execute(
                f"SELECT {', '.join(_ROUND_COLUMNS)} FROM fl_rounds "
                f"WHERE run_key = {self._p('run_key')} ORDER BY round",
                {"run_key": run_key},
            )
            rows = cursor.fetchall()
        rounds = []
        for row in rows:
            v = dict(zip(_ROUND_COLUMNS, row, strict=True))
            rounds.append(
                FederatedRound(
                    run_key=v["run_key"],
                    round=int(v["round"]),
                    status=RoundStatus(v["status"]),
                    sampled=int(v["sampled"]),
                    participants=int(v["participants"]),
                    declined=int(v["declined"]),
                    duration_s=float(v["duration_s"]),
                    train_loss=v["train_loss"],
                    eval_loss=v["eval_loss"],
                    eval_recall=v["eval_recall"],
                    eval_false_positive_rate=v["eval_false_positive_rate"],
                    detail=v["detail"],
                    metrics=_json_out(v["metrics"]) or {},
                    recorded_at=self._dialect.time_out(v["recorded_at"]),
                )
            )
        return rounds

    # -- training consent ------------------------------------------------------

    def _consent_from_row(self, row: Any) -> TrainingConsent:
        v = dict(zip(_CONSENT_COLUMNS, row, strict=True))
        issued_at = self._dialect.time_out(v["issued_at"])
        assert issued_at is not None
        return TrainingConsent(
            rider_id=v["rider_id"],
            opted_out=bool(v["opted_out"]),
            command_id=v["command_id"],
            issued_at=issued_at,
            published_at=self._dialect.time_out(v["published_at"]),
        )

    def set_training_consent(self, consent: TrainingConsent) -> TrainingConsent:
        """Store a rider's training choice (unpublished); return it.

        Raises:
            InvalidRecord: a malformed rider id or command id.
        """
        consent = dataclasses.replace(consent.validated(), published_at=None)
        values = {
            "rider_id": consent.rider_id,
            "opted_out": consent.opted_out,
            "command_id": consent.command_id,
            "issued_at": self._dialect.time_in(consent.issued_at),
            "published_at": None,
        }
        with self._transaction(write=True) as cursor:
            cursor.execute(
                f"INSERT INTO training_consent ({', '.join(_CONSENT_COLUMNS)}) "
                f"VALUES ({self._placeholders(_CONSENT_COLUMNS)}) "
                "ON CONFLICT (rider_id) DO UPDATE SET opted_out = excluded.opted_out, "
                "command_id = excluded.command_id, issued_at = excluded.issued_at, "
                "published_at = NULL",
                values,
            )
        return consent

    def get_training_consent(self, rider_id: str) -> TrainingConsent | None:
        """Return a rider's stored training choice, None if never given."""
        check_identifier("rider_id", rider_id)
        with self._transaction(write=False) as cursor:
            cursor.execute(
                f"SELECT {', '.join(_CONSENT_COLUMNS)} FROM training_consent "
                f"WHERE rider_id = {self._p('rider_id')}",
                {"rider_id": rider_id},
            )
            row = cursor.fetchone()
        return None if row is None else self._consent_from_row(row)

    def mark_consent_published(self, rider_id: str, command_id: str) -> bool:
        """Record that ``command_id`` reached the broker; False if superseded."""
        check_identifier("rider_id", rider_id)
        with self._transaction(write=True) as cursor:
            cursor.execute(
                f"UPDATE training_consent SET published_at = {self._p('now')} "
                f"WHERE rider_id = {self._p('rider_id')} "
                f"AND command_id = {self._p('command_id')}",
                {
                    "now": self._dialect.time_in(self._now()),
                    "rider_id": rider_id,
                    "command_id": command_id,
                },
            )
            changed = int(getattr(cursor, "rowcount", 0) or 0)
        return changed > 0

    def rider_gateways(self, rider_id: str) -> list[str]:
        """Return the gateways that uploaded a rider's data, by id."""
        check_identifier("rider_id", rider_id)
        with self._transaction(write=False) as cursor:
            cursor.execute(
                "SELECT DISTINCT gateway_id FROM objects WHERE rider_id = "
                f"{self._p('rider_id')} AND gateway_id IS NOT NULL ORDER BY gateway_id",
                {"rider_id": rider_id},
            )
            rows = cursor.fetchall()
        return [str(row[0]) for row in rows]

    def list_unpublished_consents(self, *, limit: int = 100) -> list[TrainingConsent]:
        """Return choices not yet published to the riders' gateways, oldest first."""
        limit = max(1, min(int(limit), 1000))
        with self._transaction(write=False) as cursor:
            cursor.execute(
                f"SELECT {', '.join(_CONSENT_COLUMNS)} FROM training_consent "
                "WHERE published_at IS NULL ORDER BY issued_at "
                f"LIMIT {self._p('limit')}",
                {"limit": limit},
            )
            rows = cursor.fetchall()
        return [self._consent_from_row(row) for row in rows]
