"""Security of the results API: scoping (404), tokens (401), malformed input (4xx)."""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
from cloud_api_env import HMAC_SECRET, ApiEnv, make_api_env
from cloud_helpers import ManualClock
from cloud_world import World, build_world
from cryptography.hazmat.primitives.asymmetric import ec
from httpx import Response

from cloud_coordinator.api.lifecycle import LifecycleServices
from cloud_coordinator.auth import Algorithm, TokenIssuer, TokenSettings
from cloud_coordinator.catalog import SqliteCatalog
from cloud_coordinator.jobs import JobRunner
from edge_agent.upload import LocalDirStore

# Routes that need no bearer token, and why.
UNAUTHENTICATED = {
    ("GET", "/health"): "liveness probe",
    ("GET", "/api/v1/blobs/{bucket}/{key}"): "signed link instead of a token",
}

Probe = Callable[[World], tuple[str, str, dict[str, Any]]]


def _raw(world: World, rider: str) -> int:
    return world.log(rider).objects["raw_csv"].object_id


# For every authenticated route: a request for another rider's data. Routes
# without a target (listings of one's own scope) check the body instead.
CROSS_RIDER: dict[tuple[str, str], Probe] = {
    ("GET", "/ready"): lambda w: ("GET", "/ready", {}),
    ("GET", "/api/v1/me"): lambda w: ("GET", "/api/v1/me", {}),
    ("GET", "/api/v1/objects"): lambda w: (
        "GET",
        "/api/v1/objects",
        {"params": {"rider_id": "{other}"}},
    ),
    ("GET", "/api/v1/objects/{object_id}"): lambda w: (
        "GET",
        "/api/v1/objects/{other_object}",
        {},
    ),
    ("GET", "/api/v1/objects/{object_id}/download"): lambda w: (
        "GET",
        "/api/v1/objects/{other_object}/download",
        {},
    ),
    ("GET", "/api/v1/logs/{log_id}/analytics"): lambda w: (
        "GET",
        "/api/v1/logs/{other_log}/analytics",
        {},
    ),
    ("GET", "/api/v1/riders"): lambda w: ("GET", "/api/v1/riders", {}),
    ("GET", "/api/v1/riders/{rider_id}"): lambda w: (
        "GET",
        "/api/v1/riders/{other}",
        {},
    ),
    ("PUT", "/api/v1/riders/{rider_id}"): lambda w: (
        "PUT",
        "/api/v1/riders/{other}",
        {"json": {"user_type": "private"}},
    ),
    ("GET", "/api/v1/riders/{rider_id}/export"): lambda w: (
        "GET",
        "/api/v1/riders/{other}/export",
        {},
    ),
    ("DELETE", "/api/v1/riders/{rider_id}/data"): lambda w: (
        "DELETE",
        "/api/v1/riders/{other}/data",
        {},
    ),
    ("GET", "/api/v1/riders/{rider_id}/training-consent"): lambda w: (
        "GET",
        "/api/v1/riders/{other}/training-consent",
        {},
    ),
    ("PUT", "/api/v1/riders/{rider_id}/training-consent"): lambda w: (
        "PUT",
        "/api/v1/riders/{other}/training-consent",
        {"json": {"opted_out": True}},
    ),
    ("GET", "/api/v1/audit"): lambda w: (
        "GET",
        "/api/v1/audit",
        {"params": {"rider_id": "{other}"}},
    ),
    ("GET", "/api/v1/logs/{log_id}/crash-verdict"): lambda w: (
        "GET",
        "/api/v1/logs/{other_log}/crash-verdict",
        {},
    ),
    ("PUT", "/api/v1/logs/{log_id}/crash-verdict"): lambda w: (
        "PUT",
        "/api/v1/logs/{other_log}/crash-verdict",
        {"json": {"verdict": "confirmed"}},
    ),
    ("POST", "/api/v1/logs/{log_id}/crash-release"): lambda w: (
        "POST",
        "/api/v1/logs/{other_log}/crash-release",
        {},
    ),
    ("POST", "/api/v1/jobs"): lambda w: (
        "POST",
        "/api/v1/jobs",
        {"json": {"object_id": "{other_object}"}},
    ),
    ("GET", "/api/v1/jobs/{job_id}"): lambda w: (
        "GET",
        "/api/v1/jobs/0f1e2d3c4b5a49688776655443322110",
        {},
    ),
    ("GET", "/api/v1/models/{model_name}"): lambda w: (
        "GET",
        "/api/v1/models/crash-detector",
        {},
    ),
    ("GET", "/api/v1/fl/runs"): lambda w: ("GET", "/api/v1/fl/runs", {}),
    ("POST", "/api/v1/fl/runs"): lambda w: (
        "POST",
        "/api/v1/fl/runs",
        {"json": {"rounds": 1, "min_nodes": 1}},
    ),
    ("GET", "/api/v1/fl/runs/{run_key}"): lambda w: (
        "GET",
        "/api/v1/fl/runs/1",
        {},
    ),
}
# Expected answer when the route has a target; None: check the body.
EXPECTED = {
    ("GET", "/ready"): None,
    ("GET", "/api/v1/me"): None,
    ("GET", "/api/v1/riders"): None,
    ("PUT", "/api/v1/riders/{rider_id}"): 403,  # admin only, whatever the target
    # R&D and admin only, whoever else asks.
    ("GET", "/api/v1/models/{model_name}"): 403,
    ("GET", "/api/v1/fl/runs"): 403,
    ("POST", "/api/v1/fl/runs"): 403,
    ("GET", "/api/v1/fl/runs/{run_key}"): 403,
}


@pytest.fixture
def world(
    sqlite_catalog: SqliteCatalog,
    local_store: LocalDirStore,
    clock: ManualClock,
    tmp_path: Path,
) -> Iterator[World]:
    env = make_api_env(sqlite_catalog, local_store, clock)
    # Background jobs on, so their routes answer as a deployed server's do.
    runner = JobRunner(
        sqlite_catalog, local_store, env.buckets, scratch_dir=tmp_path / "jobs"
    )
    services = env.app.state.services
    env.app.state.services = dataclasses.replace(
        services, lifecycle=LifecycleServices(jobs=runner)
    )
    try:
        yield build_world(env)
    finally:
        runner.close()


def _routes(env: ApiEnv) -> set[tuple[str, str]]:
    """Return every (method, path) the OpenAPI document declares."""
    spec = env.client.get("/openapi.json").json()
    return {
        (method.upper(), path)
        for path, operations in spec["paths"].items()
        for method in operations
    }


def test_every_route_is_covered_by_the_security_tables(world: World) -> None:
    routes = _routes(world.env)
    assert routes == set(CROSS_RIDER) | set(UNAUTHENTICATED)


def _send(env: ApiEnv, method: str, url: str, token: str | None, **kw: Any) -> Response:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    response: Response = env.client.request(method, url, headers=headers, **kw)
    return response


def _fill(text: str, values: dict[str, str]) -> str:
    for name, value in values.items():
        text = text.replace("{" + name + "}", value)
    return text


def _fill_request(kwargs: dict[str, Any], values: dict[str, str]) -> dict[str, Any]:
    """Fill placeholders in query parameters and JSON bodies (ids as ints)."""
    filled = dict(kwargs)
    if "params" in kwargs:
        filled["params"] = {k: _fill(v, values) for k, v in kwargs["params"].items()}
    if "json" in kwargs:
        body: dict[str, Any] = {}
        for key, value in kwargs["json"].items():
            if isinstance(value, str) and value.startswith("{"):
                text = _fill(value, values)
                value = int(text) if text.isdigit() else text
            body[key] = value
        filled["json"] = body
    return filled


@pytest.mark.parametrize(
    ("subject", "role", "other"),
    [
        ("r1", "rider", "r2"),
        ("r1", "rider", "p1"),
        ("t1", "technician", "p2"),
        ("t1", "technician", "q1"),  # assigned, but private: not visible
    ],
)
def test_other_riders_data_is_404_everywhere(
    world: World, subject: str, role: str, other: str
) -> None:
    env = world.env
    values = {
        "other": other,
        "other_object": str(_raw(world, other)),
        "other_log": world.log(other).log,
    }
    token = env.token(subject, role)
    for route, probe in CROSS_RIDER.items():
        method, url, kwargs = probe(world)
        url = _fill(url, values)
        kwargs = _fill_request(kwargs, values)
        response = _send(env, method, url, token, **kwargs)
        expected = EXPECTED.get(route, 404)
        if expected is None:
            assert response.status_code == 200, (route, response.text)
            assert other not in response.text, route
        else:
            assert response.status_code == expected, (route, response.text)
            if expected == 404:
                assert response.json() == {"detail": "not found"}, route


def test_404_for_others_equals_404_for_nothing(world: World) -> None:
    env = world.env
    other = env.get(f"/api/v1/objects/{_raw(world, 'r2')}", "r1", "rider")
    absent = env.get("/api/v1/objects/987654321", "r1", "rider")
    assert (other.status_code, other.json()) == (absent.status_code, absent.json())
    other_log = env.get(f"/api/v1/logs/{world.log('r2').log}/analytics", "r1", "rider")
    no_log = env.get("/api/v1/logs/no-such-log/analytics", "r1", "rider")
    assert (other_log.status_code, other_log.json()) == (
        no_log.status_code,
        no_log.json(),
    )


def _segment(data: dict[str, Any]) -> str:
    raw = json.dumps(data, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _bad_tokens(env: ApiEnv) -> dict[str, str | None]:
    settings = TokenSettings()
    now = int(dt.datetime.now(dt.UTC).timestamp())
    claims = {
        "iss": settings.issuer,
        "aud": settings.audience,
        "sub": "r1",
        "role": "rider",
        "iat": now,
        "exp": now + 600,
    }
    good = env.token("r1", "rider")
    header, payload, signature = good.split(".")
    tampered_claims = jwt.decode(good, options={"verify_signature": False})
    tampered_claims["role"] = "admin"
    past = TokenIssuer(
        settings,
        HMAC_SECRET,
        clock=lambda: dt.datetime.now(dt.UTC) - dt.timedelta(hours=2),
    ).mint("r1", "rider", 3600)
    es_key = ec.generate_private_key(ec.SECP256R1())
    es_token = TokenIssuer(TokenSettings(algorithm=Algorithm.ES256), es_key).mint(
        "r1", "admin", 600
    )
    return {
        "missing": None,
        "empty": "",
        "garbage": "not-a-jwt",
        "expired": past,
        "alg none": f"{_segment({'alg': 'none', 'typ': 'JWT'})}.{_segment(claims)}.",
        "tampered payload": f"{header}.{_segment(tampered_claims)}.{signature}",
        "tampered signature": f"{header}.{payload}.{signature[:-4]}AAAA",
        "other key": jwt.encode(claims, b"x" * 64, algorithm="HS256"),
        "wrong audience": jwt.encode(
            {**claims, "aud": "other-api"}, HMAC_SECRET, algorithm="HS256"
        ),
        "wrong issuer": jwt.encode(
            {**claims, "iss": "someone"}, HMAC_SECRET, algorithm="HS256"
        ),
        "no expiry": jwt.encode(
            {k: v for k, v in claims.items() if k != "exp"},
            HMAC_SECRET,
            algorithm="HS256",
        ),
        "unknown role": jwt.encode(
            {**claims, "role": "superuser"}, HMAC_SECRET, algorithm="HS256"
        ),
        "bad subject": jwt.encode(
            {**claims, "sub": "../r2"}, HMAC_SECRET, algorithm="HS256"
        ),
        "ES256 for an HS256 deployment": es_token,
        "oversized": "a" * 10_000,
    }


def test_bad_tokens_get_401_on_every_route(world: World) -> None:
    env = world.env
    values = {"other": "r1", "other_object": "1", "other_log": world.log("r1").log}
    for name, token in _bad_tokens(env).items():
        for probe in CROSS_RIDER.values():
            method, url, kwargs = probe(world)
            url = _fill(url, values)
            kwargs = _fill_request(kwargs, values)
            response = _send(env, method, url, token, **kwargs)
            assert response.status_code == 401, (name, url, response.text)
            assert response.headers["www-authenticate"].startswith("Bearer"), name


def test_basic_auth_scheme_is_refused(world: World) -> None:
    response = world.env.client.get(
        "/api/v1/me", headers={"Authorization": "Basic cjE6cGFzcw=="}
    )
    assert response.status_code == 401


@pytest.mark.parametrize(
    ("url", "params"),
    [
        ("/api/v1/objects/abc", {}),
        ("/api/v1/objects/0", {}),
        ("/api/v1/objects/-5", {}),
        ("/api/v1/objects/99999999999999999999999", {}),
        ("/api/v1/objects/1%2F..%2F2", {}),
        ("/api/v1/logs/%2E%2E/analytics", {}),
        ("/api/v1/logs/a%5Cb/analytics", {}),
        ("/api/v1/logs/a%00b/analytics", {}),
        ("/api/v1/logs/a%1Fb/analytics", {}),
        ("/api/v1/logs/" + "x" * 201 + "/analytics", {}),
        ("/api/v1/logs/L1/analytics", {"suit_id": ".."}),
        ("/api/v1/riders/%2E%2E", {}),
        ("/api/v1/riders/a%5Cb", {}),
        ("/api/v1/objects", {"rider_id": "../r2"}),
        ("/api/v1/objects", {"suit_id": "a\\b"}),
        ("/api/v1/objects", {"log_id": "a/../b"}),
        ("/api/v1/objects", {"kind": "../../etc"}),
        ("/api/v1/objects", {"crash": "maybe"}),
        ("/api/v1/objects", {"limit": "0"}),
        ("/api/v1/objects", {"limit": "ten"}),
        ("/api/v1/objects", {"from": "yesterday"}),
        ("/api/v1/objects", {"cursor": "../../etc/passwd"}),
        ("/api/v1/objects", {"cursor": "x" * 2000}),
        ("/api/v1/riders", {"cursor": "%%%"}),
    ],
)
def test_malformed_input_is_4xx(world: World, url: str, params: dict[str, str]) -> None:
    response = world.env.get(url, "x", "admin", params=params)
    assert 400 <= response.status_code < 500, response.text
    assert response.status_code != 401


@pytest.mark.parametrize(
    "key",
    [
        "%2E%2E/%2E%2E/etc/passwd",
        "a%2F..%2F..%2Fsecret",
        "/etc/passwd",
        "r1/./x.csv.gz",
        "r1/x%5C..%5Cy",
        "r1/x%00.csv.gz",
        "",
    ],
)
def test_blob_route_refuses_traversal(world: World, key: str) -> None:
    link = world.env.get(f"/api/v1/objects/{_raw(world, 'r1')}/download", "r1", "rider")
    signature = link.json()["url"].split("signature=")[1]
    response = world.env.client.get(
        f"/api/v1/blobs/raw/{key}",
        params={"expires": "4102444800", "signature": signature},
    )
    assert response.status_code in (400, 403, 404), response.text
    assert b"root:" not in response.content
