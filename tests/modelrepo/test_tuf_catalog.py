"""Catalog migration 6: model releases and roll-outs, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from cloud_coordinator.catalog import (
    Catalog,
    InvalidRecord,
    ModelRelease,
    ModelRollout,
    PostgresCatalog,
    SqliteCatalog,
)
from tests.support.postgres import PostgresServer

T0 = dt.datetime(2026, 12, 4, 12, 0, tzinfo=dt.UTC)


class ModelCatalogContract:
    """What every backend does with model releases; subclasses give ``catalog``."""

    @pytest.fixture
    def catalog(self) -> Iterator[Catalog]:
        raise NotImplementedError

    def test_release_recorded_once_and_listed_in_order(self, catalog: Catalog) -> None:
        first = ModelRelease(
            "crash-detector",
            "1.2.0",
            "a" * 64,
            75928,
            2,
            "federated",
            "run-1",
            gate_passed=True,
            approved=False,
            figures={"detected": 6},
            published_at=T0,
        )
        second = ModelRelease(
            "crash-detector",
            "1.3.0",
            "b" * 64,
            75928,
            3,
            "republished",
            None,
            gate_passed=False,
            approved=True,
            published_at=T0 + dt.timedelta(hours=1),
        )
        catalog.record_model_release(second)
        catalog.record_model_release(first)
        catalog.record_model_release(first)  # recorded again: still one row

        releases = catalog.list_model_releases("crash-detector")

        assert [r.version for r in releases] == ["1.2.0", "1.3.0"]
        assert releases[0] == first
        assert releases[1].approved and not releases[1].gate_passed
        assert catalog.list_model_releases("other") == []

    def test_rollout_newest_step_wins(self, catalog: Catalog) -> None:
        assert catalog.get_model_rollout("crash-detector") is None
        canary = ModelRollout(
            "crash-detector",
            1,
            "1.2.0",
            None,
            "canary",
            ("gw-a",),
            0.1,
            "published",
            T0,
        )
        complete = ModelRollout(
            "crash-detector",
            2,
            "1.2.0",
            None,
            "complete",
            ("gw-a",),
            0.1,
            "1/1 canaries healthy",
            T0 + dt.timedelta(minutes=5),
        )
        catalog.record_model_rollout(complete)
        catalog.record_model_rollout(canary)

        assert catalog.get_model_rollout("crash-detector") == complete

    def test_bad_records_refused(self, catalog: Catalog) -> None:
        with pytest.raises(InvalidRecord, match="sha256"):
            catalog.record_model_release(
                ModelRelease("m", "1.0.0", "short", 1, 1, "file", None, True, False)
            )
        with pytest.raises(InvalidRecord, match="stage"):
            catalog.record_model_rollout(ModelRollout("m", 1, "1.0.0", None, "paused"))


class TestSqliteModelCatalog(ModelCatalogContract):
    @pytest.fixture
    def catalog(self, tmp_path: Path) -> Iterator[Catalog]:
        catalog = SqliteCatalog(tmp_path / "catalog.db")
        catalog.migrate()
        yield catalog
        catalog.close()


class TestPostgresModelCatalog(ModelCatalogContract):
    @pytest.fixture
    def catalog(self, postgres_server: PostgresServer) -> Iterator[Catalog]:
        url = postgres_server.create_database(f"models_{uuid.uuid4().hex[:8]}")
        catalog = PostgresCatalog(url, schema="models_test")
        catalog.migrate()
        yield catalog
        catalog.close()
