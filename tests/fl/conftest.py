"""Fixtures of the federated-learning tests: catalogs on both backends, a model."""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
try:
    from tests.support.postgres import PostgresServer, postgres_server
except ModuleNotFoundError:
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from tests.support.postgres import PostgresServer, postgres_server

from fl_helpers import prepare_model

from cloud_coordinator.catalog import Catalog, PostgresCatalog, SqliteCatalog

__all__ = ["postgres_server"]


@pytest.fixture(scope="session")
def fl_catalog_database(postgres_server: PostgresServer) -> str:
    """Return the URL of one database the FL tests share (by schema)."""
    return postgres_server.create_database("fl")


@pytest.fixture(params=["sqlite", "postgres"])
def fl_catalog(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Catalog]:
    """A migrated catalog on each backend in turn."""
    catalog: Catalog
    if request.param == "sqlite":
        catalog = SqliteCatalog(tmp_path / "catalog.db")
    else:
        url = request.getfixturevalue("fl_catalog_database")
        catalog = PostgresCatalog(url, schema=f"fl_{uuid.uuid4().hex[:12]}")
    catalog.migrate()
    yield catalog
    catalog.close()


@pytest.fixture(scope="session")
def fl_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shipped model (with its head in the metadata) in a folder of its own."""
    return prepare_model(tmp_path_factory.mktemp("fl-model"))
