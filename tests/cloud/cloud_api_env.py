"""The results API on real parts, with a token issuer, for the API tests."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cloud_helpers import ManualClock
from fastapi import FastAPI
from fastapi.testclient import TestClient
from httpx import Response

from cloud_coordinator.api import (
    ApiServices,
    ApiSettings,
    LocalPresigner,
    Presigner,
    create_app,
    derive_link_key,
)
from cloud_coordinator.auth import TokenIssuer, TokenSettings, TokenVerifier
from cloud_coordinator.catalog import Catalog
from edge_agent.upload import BucketNames, ObjectStore

HMAC_SECRET = b"cloud-tests-secret-" + b"k" * 32


@dataclass
class ApiEnv:
    """A results API over a real catalog and store, with a token issuer."""

    client: TestClient
    app: FastAPI
    catalog: Catalog
    store: ObjectStore
    buckets: BucketNames
    issuer: TokenIssuer
    clock: ManualClock

    def token(self, subject: str, role: str, ttl_s: int = 3600) -> str:
        return self.issuer.mint(subject, role, ttl_s)

    def headers(self, subject: str, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(subject, role)}"}

    def get(self, path: str, subject: str, role: str, **kwargs: Any) -> Response:
        response: Response = self.client.get(
            path, headers=self.headers(subject, role), **kwargs
        )
        return response


def make_api_env(
    catalog: Catalog,
    store: ObjectStore,
    clock: ManualClock,
    *,
    buckets: BucketNames | None = None,
    presigner: Presigner | None = None,
    settings: ApiSettings | None = None,
) -> ApiEnv:
    """Return an :class:`ApiEnv` (HS256 tokens, clock shared with the catalog)."""
    token_settings = TokenSettings()
    services = ApiServices(
        catalog=catalog,
        store=store,
        verifier=TokenVerifier(token_settings, HMAC_SECRET),
        presigner=presigner or LocalPresigner(derive_link_key(HMAC_SECRET)),
        buckets=buckets or BucketNames(),
        settings=settings or ApiSettings(default_page_limit=20, max_page_limit=50),
        clock=clock,
    )
    app = create_app(services)
    # Tokens use real time: PyJWT checks expiry against the system clock.
    issuer = TokenIssuer(token_settings, HMAC_SECRET)
    client = TestClient(app, base_url="http://testserver")
    return ApiEnv(client, app, catalog, store, services.buckets, issuer, clock)
