"""Published model versions and their roll-outs (schema migration 6).

A mixin of :class:`~.sqlbase.SqlCatalog`, written once for SQLite and
PostgreSQL. The TUF repository in the models bucket is what gateways trust;
these tables are the coordinator's record of it for R&D (which version,
from which federated run, how it scored at the gate, who approved it, and
each step of its roll-out). Writes are idempotent on their keys, so a
publication recorded twice leaves one row.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from abc import abstractmethod
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

from .errors import InvalidRecord
from .sql import Dialect

__all__ = ["ModelRegistrySql", "ModelRelease", "ModelRollout"]

_RELEASE_COLUMNS = (
    "model_name",
    "version",
    "sha256",
    "size_bytes",
    "targets_version",
    "source",
    "run_id",
    "gate_passed",
    "approved",
    "figures",
    "published_at",
)
_ROLLOUT_COLUMNS = (
    "model_name",
    "sequence",
    "version",
    "stable_version",
    "stage",
    "canary_gateways",
    "canary_share",
    "note",
    "updated_at",
)
_STAGES = ("canary", "complete", "halted")


@dataclass(frozen=True)
class ModelRelease:
    """One published model version."""

    model_name: str
    version: str
    sha256: str
    size_bytes: int
    targets_version: int
    source: str
    run_id: str | None
    gate_passed: bool
    approved: bool
    figures: dict[str, Any] = field(default_factory=dict)
    published_at: dt.datetime | None = None


@dataclass(frozen=True)
class ModelRollout:
    """One step of a model's roll-out (its plan's sequence number)."""

    model_name: str
    sequence: int
    version: str
    stable_version: str | None
    stage: str
    canary_gateways: tuple[str, ...] = ()
    canary_share: float = 0.0
    note: str = ""
    updated_at: dt.datetime | None = None


def _check_release(release: ModelRelease) -> None:
    if not release.model_name or not release.version:
        raise InvalidRecord("model release: model_name and version are required")
    if len(release.sha256) != 64 or release.size_bytes < 0:
        raise InvalidRecord(
            f"model release {release.model_name} {release.version}: sha256 must be "
            f"64 hex digits and size_bytes >= 0, found {release.sha256!r:.70}, "
            f"{release.size_bytes}"
        )


def _check_rollout(rollout: ModelRollout) -> None:
    if rollout.stage not in _STAGES or rollout.sequence < 1:
        raise InvalidRecord(
            f"model roll-out {rollout.model_name} #{rollout.sequence}: stage must be "
            f"one of {_STAGES} and sequence >= 1, found {rollout.stage!r}"
        )


class ModelRegistrySql:
    """Model release and roll-out methods of the SQL catalog."""

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

    def _upsert_sql(
        self, table: str, columns: tuple[str, ...], key: tuple[str, ...]
    ) -> str:
        return (
            f"INSERT INTO {table} ({', '.join(columns)}) VALUES "
            f"({', '.join(self._p(c) for c in columns)}) "
            f"ON CONFLICT ({', '.join(key)}) DO UPDATE SET "
            + ", ".join(f"{c} = excluded.{c}" for c in columns if c not in key)
        )

    def record_model_release(self, release: ModelRelease) -> ModelRelease:
        """Record a published version (again: update the row); return it stored.

        Raises:
            InvalidRecord: a missing name or version, a malformed SHA-256.
            CatalogUnavailable: the database cannot be reached.
        """
        _check_release(release)
        published_at = release.published_at or self._now()
        values = {
            "model_name": release.model_name,
            "version": release.version,
            "sha256": release.sha256,
            "size_bytes": release.size_bytes,
            "targets_version": release.targets_version,
            "source": release.source,
            "run_id": release.run_id,
            "gate_passed": bool(release.gate_passed),
            "approved": bool(release.approved),
            "figures": json.dumps(release.figures, sort_keys=True),
            "published_at": self._dialect.time_in(published_at),
        }
        with self._transaction(write=True) as cursor:
            cursor.execute(
                self._upsert_sql(
                    "model_releases", _RELEASE_COLUMNS, ("model_name", "version")
                ),
                values,
            )
        return dataclasses.replace(release, published_at=published_at)

    def list_model_releases(self, model_name: str) -> list[ModelRelease]:
        """Return the recorded versions of a model, oldest publication first.

        Raises:
            CatalogUnavailable: the database cannot be reached.
        """
        with self._transaction(write=False) as cursor:
            cursor.execute(
                f"SELECT {', '.join(_RELEASE_COLUMNS)} FROM model_releases "
                f"WHERE model_name = {self._p('name')} "
                "ORDER BY published_at, targets_version",
                {"name": model_name},
            )
            rows = cursor.fetchall()
        releases = []
        for row in rows:
            v = dict(zip(_RELEASE_COLUMNS, row, strict=True))
            releases.append(
                ModelRelease(
                    model_name=v["model_name"],
                    version=v["version"],
                    sha256=v["sha256"],
                    size_bytes=int(v["size_bytes"]),
                    targets_version=int(v["targets_version"]),
                    source=v["source"],
                    run_id=v["run_id"],
                    gate_passed=bool(v["gate_passed"]),
                    approved=bool(v["approved"]),
                    figures=json.loads(v["figures"]),
                    published_at=self._dialect.time_out(v["published_at"]),
                )
            )
        return releases

    def record_model_rollout(self, rollout: ModelRollout) -> ModelRollout:
        """Record one roll-out step (again: update the row); return it stored.

        Raises:
            InvalidRecord: an unknown stage or a sequence below 1.
            CatalogUnavailable: the database cannot be reached.
        """
        _check_rollout(rollout)
        updated_at = rollout.updated_at or self._now()
        values = {
            "model_name": rollout.model_name,
            "sequence": rollout.sequence,
            "version": rollout.version,
            "stable_version": rollout.stable_version,
            "stage": rollout.stage,
            "canary_gateways": json.dumps(list(rollout.canary_gateways)),
            "canary_share": float(rollout.canary_share),
            "note": rollout.note,
            "updated_at": self._dialect.time_in(updated_at),
        }
        with self._transaction(write=True) as cursor:
            cursor.execute(
                self._upsert_sql(
                    "model_rollouts", _ROLLOUT_COLUMNS, ("model_name", "sequence")
                ),
                values,
            )
        return dataclasses.replace(rollout, updated_at=updated_at)

    def get_model_rollout(self, model_name: str) -> ModelRollout | None:
        """Return the newest roll-out step of a model, or None.

        Raises:
            CatalogUnavailable: the database cannot be reached.
        """
        with self._transaction(write=False) as cursor:
            cursor.execute(
                f"SELECT {', '.join(_ROLLOUT_COLUMNS)} FROM model_rollouts "
                f"WHERE model_name = {self._p('name')} "
                "ORDER BY sequence DESC LIMIT 1",
                {"name": model_name},
            )
            row = cursor.fetchone()
        if row is None:
            return None
        v = dict(zip(_ROLLOUT_COLUMNS, row, strict=True))
        return ModelRollout(
            model_name=v["model_name"],
            sequence=int(v["sequence"]),
            version=v["version"],
            stable_version=v["stable_version"],
            stage=v["stage"],
            canary_gateways=tuple(json.loads(v["canary_gateways"])),
            canary_share=float(v["canary_share"]),
            note=v["note"],
            updated_at=self._dialect.time_out(v["updated_at"]),
        )
