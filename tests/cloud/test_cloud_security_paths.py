"""Path traversal and malformed ids get 4xx on every route of the API.

The routes are read from the app itself (its OpenAPI document), so routes
added later are covered without changing this file. Each path parameter of
each operation is replaced in turn by a hostile value (dot segments, encoded
slashes and backslashes, NUL and CR/LF, invalid UTF-8, an overlong id,
numbers out of range); the other parameters get a plausible value and a
request body that satisfies the operation's schema, so the path parameter
is what the handler has to refuse. Every response must be a client error
(never a success, never a server error) and must not leak a file.
Query parameters that name a rider, suit, log or cursor get the same
treatment. Requests carry an admin token, so authorisation never answers
first.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cloud_api_env import ApiEnv, make_api_env
from cloud_helpers import ManualClock
from cloud_world import World, build_world

from cloud_coordinator.catalog import SqliteCatalog
from edge_agent.upload import LocalDirStore

# Hostile path segments, already percent-encoded as they go on the wire.
HOSTILE_SEGMENTS = {
    "dotdot": "%2E%2E",
    "dot": "%2E",
    "traversal": "%2E%2E%2F%2E%2E%2Fetc%2Fpasswd",
    "backslash": "..%5C..%5Cwindows%5Cwin.ini",
    "double-encoded": "%252E%252E%252Fetc%252Fpasswd",
    "nul": "a%00b",
    "crlf": "a%0D%0ASet-Cookie:%20x=1",
    "control": "a%1Fb",
    "overlong": "x" * 5000,
}
# Values malformed only where the parameter is an integer (an object id).
HOSTILE_NUMBERS = {"negative": "-1", "huge-number": "9" * 40, "word": "one"}
# Invalid UTF-8: the server decodes it to U+FFFD before the app sees it.
BAD_UTF8 = "%FF%FE"
# Hostile values of query parameters that carry ids or cursors.
HOSTILE_QUERY = {
    "dotdot": "..",
    "traversal": "../../etc/passwd",
    "backslash": "a\\b",
    "nul": "a\x00b",
    "overlong": "x" * 5000,
}
_ID_QUERY_RE = re.compile(r"(^|_)(id|cursor)$")
_PARAM_RE = re.compile(r"{([^}:]+)(:[^}]*)?}")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    folder: Path = tmp_path_factory.mktemp("security")
    clock = ManualClock()
    catalog = SqliteCatalog(folder / "catalog.db", clock=clock)
    catalog.migrate()
    store = LocalDirStore(folder / "store")
    for bucket in ("raw", "analytics", "crash", "archive"):
        store.ensure_bucket(bucket)
    yield build_world(make_api_env(catalog, store, clock))
    catalog.close()


def _spec(env: ApiEnv) -> dict[str, Any]:
    spec: dict[str, Any] = env.client.get("/openapi.json").json()
    return spec


def _resolve(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        schema = spec["components"]["schemas"][name]
    return schema


def _example(spec: dict[str, Any], schema: dict[str, Any], depth: int = 0) -> Any:
    """Return a minimal value satisfying ``schema`` (required fields only)."""
    schema = _resolve(spec, schema)
    if "enum" in schema:
        return schema["enum"][0]
    if "const" in schema:
        return schema["const"]
    for key in ("anyOf", "oneOf", "allOf"):
        if key in schema:
            options = [
                s for s in schema[key] if _resolve(spec, s).get("type") != "null"
            ]
            return _example(spec, (options or schema[key])[0], depth + 1)
    kind = schema.get("type", "object")
    if kind == "object":
        if depth > 5:
            return {}
        props = schema.get("properties", {})
        return {
            name: _example(spec, props[name], depth + 1)
            for name in schema.get("required", [])
            if name in props
        }
    if kind == "array":
        return []
    if kind in ("integer", "number"):
        return max(1, schema.get("minimum", 1))
    if kind == "boolean":
        return True
    if schema.get("format") == "date-time":
        return "2026-12-01T00:00:00Z"
    return "x" * max(1, schema.get("minLength", 1))


def _operations(env: ApiEnv) -> Iterator[tuple[str, str, dict[str, Any]]]:
    spec = _spec(env)
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if method in ("get", "put", "post", "delete", "patch"):
                yield method.upper(), path, operation


def _body(env: ApiEnv, operation: dict[str, Any]) -> Any:
    content = operation.get("requestBody", {}).get("content", {})
    if "application/json" not in content:
        return None
    return _example(_spec(env), content["application/json"]["schema"])


def _integer_params(operation: dict[str, Any]) -> set[str]:
    return {
        parameter["name"]
        for parameter in operation.get("parameters", [])
        if parameter["in"] == "path"
        and parameter.get("schema", {}).get("type") == "integer"
    }


def _cases(
    env: ApiEnv, hostile_values: dict[str, str] | None = None
) -> list[tuple[str, str, str, str, Any]]:
    """Return (method, template, url, what, body) for every hostile request."""
    cases = []
    for method, path, operation in _operations(env):
        names = [match.group(1) for match in _PARAM_RE.finditer(path)]
        body = _body(env, operation)
        integers = _integer_params(operation)
        for target in names:
            values = hostile_values or dict(HOSTILE_SEGMENTS)
            if hostile_values is None and target in integers:
                values.update(HOSTILE_NUMBERS)
            for label, hostile in values.items():
                url = path
                for name in names:
                    value = hostile if name == target else "1"
                    url = re.sub(r"{" + name + r"(:[^}]*)?}", value, url)
                cases.append((method, path, url, f"{target}={label}", body))
    return cases


def _refusals(env: ApiEnv, cases: list[tuple[str, str, str, str, Any]]) -> list[str]:
    """Send ``cases`` as an admin; return each one not answered with a 4xx."""
    headers = env.headers("admin-1", "admin")
    wrong = []
    for method, path, url, what, body in cases:
        response = env.client.request(
            method, url, headers=headers, **({"json": body} if body is not None else {})
        )
        leaked = b"root:" in response.content or b"[fonts]" in response.content
        if not 400 <= response.status_code < 500 or leaked:
            wrong.append(f"{method} {path} with {what}: {response.status_code}")
    return wrong


def test_security_every_path_parameter_refuses_hostile_values(world: World) -> None:
    cases = _cases(world.env)
    templates = {path for _, path, _, _, _ in cases}
    assert len(templates) >= 8, f"expected the API's routes, found {templates}"
    wrong = _refusals(world.env, cases)
    assert not wrong, "\n".join(wrong)


def test_security_invalid_utf8_in_ids_is_refused(world: World) -> None:
    wrong = _refusals(world.env, _cases(world.env, {"bad-utf8": BAD_UTF8}))
    assert not wrong, "\n".join(wrong)


def test_security_id_query_parameters_refuse_hostile_values(world: World) -> None:
    env = world.env
    headers = env.headers("admin-1", "admin")
    checked = []
    wrong = []
    for method, path, operation in _operations(env):
        if method != "GET" or "{" in path:
            continue
        for parameter in operation.get("parameters", []):
            name = parameter["name"]
            if parameter["in"] != "query" or not _ID_QUERY_RE.search(name):
                continue
            checked.append(f"{path}?{name}")
            for label, hostile in HOSTILE_QUERY.items():
                response = env.client.get(path, headers=headers, params={name: hostile})
                if not 400 <= response.status_code < 500:
                    wrong.append(f"GET {path}?{name}={label}: {response.status_code}")
    assert checked, "no id query parameters found"
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize(
    "value", ["1 OR 1=1", "' OR '1'='1", "r1' --", "r1;DROP TABLE objects"]
)
def test_security_sql_in_ids_is_just_an_unknown_id(world: World, value: str) -> None:
    env = world.env
    for path in ("/api/v1/riders/{id}", "/api/v1/logs/{id}/analytics"):
        response = env.get(path.replace("{id}", value), "r1", "rider")
        assert response.status_code in (400, 404), (path, response.text)
    listing = env.get("/api/v1/objects", "admin-1", "admin", params={"rider_id": value})
    assert listing.status_code in (200, 400)
    if listing.status_code == 200:
        assert listing.json()["items"] == []
    # The catalog still answers for real riders.
    own = env.get("/api/v1/objects", "r1", "rider")
    assert own.status_code == 200 and own.json()["items"]


def test_security_generated_bodies_pass_validation(world: World) -> None:
    # Without this, a hostile path could be refused only for a bad body.
    env = world.env
    headers = env.headers("admin-1", "admin")
    checked = []
    for method, path, operation in _operations(env):
        body = _body(env, operation)
        if body is None:
            continue
        url = _PARAM_RE.sub("zz-probe", path)
        response = env.client.request(method, url, headers=headers, json=body)
        checked.append(path)
        assert response.status_code != 422, (method, path, body, response.text)
    assert checked
