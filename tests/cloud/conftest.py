"""Fixtures of the cloud tests: PostgreSQL and SeaweedFS servers, catalogs.

One throw-away PostgreSQL cluster and one SeaweedFS serve the whole session;
each test gets its own PostgreSQL schema (created by the catalog's
migrations) or its own SQLite file, so tests never see each other's rows.
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

try:
    from tests.support.postgres import PostgresServer, postgres_server
    from tests.support.seaweed import seaweed_s3
except ModuleNotFoundError:
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from tests.support.postgres import PostgresServer, postgres_server
    from tests.support.seaweed import seaweed_s3

from cloud_helpers import ManualClock

from cloud_coordinator.catalog import Catalog, PostgresCatalog, SqliteCatalog
from edge_agent.upload import LocalDirStore

__all__ = ["postgres_server", "seaweed_s3"]


@pytest.fixture(scope="session")
def catalog_database(postgres_server: PostgresServer) -> str:
    """Return the URL of one database the cloud tests share (by schema)."""
    return postgres_server.create_database("cloud")


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def sqlite_catalog(tmp_path: Path, clock: ManualClock) -> Iterator[SqliteCatalog]:
    catalog = SqliteCatalog(tmp_path / "catalog.db", clock=clock)
    catalog.migrate()
    yield catalog
    catalog.close()


@pytest.fixture
def postgres_catalog(
    catalog_database: str, clock: ManualClock
) -> Iterator[PostgresCatalog]:
    catalog = PostgresCatalog(
        catalog_database, schema=f"t_{uuid.uuid4().hex[:12]}", clock=clock
    )
    catalog.migrate()
    yield catalog
    catalog.close()


@pytest.fixture(params=["sqlite", "postgres"])
def any_catalog(request: pytest.FixtureRequest) -> Catalog:
    """Each backend in turn (the API tests that are cheap on both)."""
    fixture = "sqlite_catalog" if request.param == "sqlite" else "postgres_catalog"
    catalog: Catalog = request.getfixturevalue(fixture)
    return catalog


@pytest.fixture
def local_store(tmp_path: Path) -> LocalDirStore:
    store = LocalDirStore(tmp_path / "store")
    for bucket in ("raw", "analytics", "crash"):
        store.ensure_bucket(bucket)
    return store
