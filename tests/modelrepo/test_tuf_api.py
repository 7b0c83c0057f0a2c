"""R&D reads published versions and the roll-out through the results API."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from httpx import Response
from modelrepo_env import MODEL, RepoWorld

from cloud_coordinator.api import (
    ApiServices,
    LocalPresigner,
    create_app,
    derive_link_key,
)
from cloud_coordinator.auth import TokenIssuer, TokenSettings, TokenVerifier
from cloud_coordinator.catalog import SqliteCatalog
from cloud_coordinator.modelrepo import RolloutSettings
from models.registry import shipped_model

SECRET = b"model-api-tests-" + b"s" * 32
SHIPPED = shipped_model().version


@pytest.fixture
def catalog(tmp_path: Path) -> Iterator[SqliteCatalog]:
    catalog = SqliteCatalog(tmp_path / "catalog.db")
    catalog.migrate()
    yield catalog
    catalog.close()


def test_tuf_api_lists_releases_and_rollout_for_rnd(
    world: RepoWorld, catalog: SqliteCatalog
) -> None:
    major, minor, _ = (int(p) for p in SHIPPED.split("."))
    version = f"{major}.{minor + 1}.0"
    world.publisher.records = catalog
    world.publisher.rollout = RolloutSettings(canary_gateways=("gw-a",))
    world.publish_version(version)
    services = ApiServices(
        catalog=catalog,
        store=world.store,
        verifier=TokenVerifier(TokenSettings(), SECRET),
        presigner=LocalPresigner(derive_link_key(SECRET)),
    )
    client = TestClient(create_app(services))
    issuer = TokenIssuer(TokenSettings(), SECRET)

    def get(path: str, role: str) -> Response:
        token = issuer.mint("someone", role, 600)
        response: Response = client.get(
            path, headers={"Authorization": f"Bearer {token}"}
        )
        return response

    response = get(f"/api/v1/models/{MODEL}", "rnd")
    assert response.status_code == 200
    body = response.json()
    assert [r["version"] for r in body["releases"]] == [version]
    assert body["releases"][0]["gate_passed"] is True
    assert body["rollout"]["stage"] == "canary"
    assert body["rollout"]["canary_gateways"] == ["gw-a"]

    assert get(f"/api/v1/models/{MODEL}", "rider").status_code == 403
    assert get("/api/v1/models/unknown-model", "admin").status_code == 404
