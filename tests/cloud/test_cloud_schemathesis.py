"""Schemathesis (v4) against the app's own OpenAPI spec: no 5xx anywhere.

The app runs in process (ASGI) over a SQLite catalog and a local store
holding a few riders' logs, with every route that exists when the test
runs: routes added later are covered without changing this file. Each
operation gets a bounded number of generated requests, valid and invalid
ones (schemathesis' positive and negative modes), each sent once with an
admin token (every handler runs past authorisation) and once with a
rider's (scoping paths). The property checked is the one the issue asks
for: no response is a server error, except the listed 503 answers of
operations whose back-end this test app does not have (federated runs
need a Flower SuperLink). Every operation is tried and every
failing one named, so one broken route does not hide another.

The cases come from schemathesis' Hypothesis strategies rather than its
pytest plugin: the plugin's fixture-based loader (needed because the app is
built in a fixture) does not work with pytest 9 (it sets
``request.node._nodeid``, which pytest 9 no longer has).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import hypothesis
import pytest
import schemathesis
from cloud_api_env import make_api_env
from cloud_helpers import ManualClock
from cloud_world import World, build_world
from schemathesis.generation import GenerationMode

from cloud_coordinator.api.lifecycle import LifecycleServices
from cloud_coordinator.catalog import SqliteCatalog
from cloud_coordinator.jobs import JobRunner
from edge_agent.upload import LocalDirStore

# Generated requests per operation and mode; about 20 operations, two modes
# and two roles stay well within the two-minute budget.
MAX_EXAMPLES = 40
NO_CASES = "no cases"
# 503 answers this test app gives by design, because a back-end the
# operation needs does not exist here; any other 5xx fails the test.
EXPECTED_503 = {
    ("POST", "/api/v1/fl/runs"): "federated runs not configured",  # no SuperLink
}


@pytest.fixture(scope="module")
def api_world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    folder: Path = tmp_path_factory.mktemp("schemathesis")
    clock = ManualClock()
    catalog = SqliteCatalog(folder / "catalog.db", clock=clock)
    catalog.migrate()
    store = LocalDirStore(folder / "store")
    for bucket in ("raw", "analytics", "crash", "archive"):
        store.ensure_bucket(bucket)
    env = make_api_env(catalog, store, clock)
    # As served by `cloud-coordinator api`: background jobs enabled.
    runner = JobRunner(catalog, store, env.buckets, scratch_dir=folder / "jobs")
    env.app.state.services = dataclasses.replace(
        env.app.state.services, lifecycle=LifecycleServices(jobs=runner)
    )
    yield build_world(env)
    runner.close()
    catalog.close()


def _server_errors(
    operation: Any, mode: GenerationMode, bearers: dict[str, dict[str, str]]
) -> list[str]:
    """Run one operation's generated cases; return a line per 5xx found."""
    found: list[str] = []

    @hypothesis.given(case=operation.as_strategy(generation_mode=mode))
    @hypothesis.settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        suppress_health_check=list(hypothesis.HealthCheck),
        database=None,
        derandomize=True,
        phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate],
    )
    def run(case: Any) -> None:
        for role, headers in bearers.items():
            response = case.call(headers=headers)
            expected = EXPECTED_503.get((case.method.upper(), case.path))
            if (
                response.status_code == 503
                and expected is not None
                and expected in response.text
            ):
                continue
            if response.status_code >= 500 and len(found) < 3:
                found.append(
                    f"{role}: {case.method} {case.formatted_path} "
                    f"-> {response.status_code} {response.text[:200]!r}; "
                    f"reproduce: {case.as_curl_command(headers=headers)}"
                )

    try:
        run()
    except hypothesis.errors.Unsatisfiable:
        # Nothing to vary (no parameters, or no way to break the schema in
        # negative mode): the operation has no cases in this mode.
        return [NO_CASES]
    return found


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_cloud_schemathesis_no_server_errors(
    api_world: World, mode: GenerationMode
) -> None:
    schema = schemathesis.openapi.from_asgi("/openapi.json", api_world.env.app)
    # The tokens come from the test; generated Authorization headers would
    # only ever reach the 401 path.
    schema.config.generation.update(with_security_parameters=False)
    bearers = {
        role: {"Authorization": f"Bearer {api_world.env.token(subject, role)}"}
        for subject, role in (("admin-1", "admin"), ("r1", "rider"))
    }
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 10, "the spec lost its routes"

    failures: list[str] = []
    tried = 0
    for operation in operations:
        found = _server_errors(operation, mode, bearers)
        if found != [NO_CASES]:
            tried += 1
            failures += found
    assert not failures, "server errors:\n" + "\n".join(failures)
    # Most operations take parameters that can be generated in either mode.
    assert tried >= len(operations) // 2, f"only {tried} operations had cases"
