"""Start federated runs and report on them: what the CLI and the API call.

Starting a run

1. checks the run settings (:class:`~.settings.RunSettings`) before anything
   is contacted, so a typo fails at once with the key named;
2. records the run in the catalog (state ``starting``) under a new run key;
3. submits the app bundle to the SuperLink's Control API with the settings
   as run-config overrides, among them the catalog URL and the run key the
   ServerApp records its rounds under;
4. stores the SuperLink's run id; a refused submission marks the run
   ``failed`` with the reason and raises.

The ServerApp then moves the run to ``running`` and ``finished`` or
``failed``; :func:`run_report` joins that with the per-round records.
"""

from __future__ import annotations

import dataclasses
import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cloud_coordinator.catalog import Catalog
from cloud_coordinator.catalog.fl_records import (
    FederatedRound,
    FederatedRun,
    RunState,
)

from .control import ControlClient
from .errors import ControlError, RunConfigError
from .fab import build_app_bundle
from .settings import RunSettings

__all__ = ["RunReport", "RunRequest", "new_run_key", "run_report", "start_run"]

_LOGGER = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunRequest:
    """What R&D asks for; ``overrides`` are further run-config keys."""

    rounds: int
    min_nodes: int
    strategy: str = "fedavg"
    overrides: Mapping[str, Any] = dataclasses.field(default_factory=dict)


@dataclass(frozen=True)
class RunReport:
    """A run and its rounds, as the CLI and API show them."""

    run: FederatedRun
    rounds: list[FederatedRound]

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""

        def plain(value: Any) -> Any:
            if isinstance(value, datetime):
                return value.isoformat()
            return value

        run = {k: plain(v) for k, v in dataclasses.asdict(self.run).items()}
        run["state"] = str(self.run.state)
        rounds = []
        for record in self.rounds:
            item = {k: plain(v) for k, v in dataclasses.asdict(record).items()}
            item["status"] = str(record.status)
            rounds.append(item)
        return {"run": run, "rounds": rounds}


def new_run_key() -> str:
    """Return a new, sortable run key (``fl-<UTC time>-<random>``)."""
    return f"fl-{datetime.now(UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"


def start_run(
    catalog: Catalog,
    control: ControlClient,
    request: RunRequest,
    *,
    requested_by: str,
    base_config: Mapping[str, Any],
    app_dir: Path | None = None,
) -> FederatedRun:
    """Record and submit a run; see the module docstring.

    Args:
        catalog: where the run and its rounds are recorded.
        control: the SuperLink's Control API.
        request: rounds, quorum, strategy and further overrides.
        requested_by: who asked (token subject or operator).
        base_config: run-config keys from the coordinator's ``[fl]`` section
            (catalog URL, output folder, timeouts); the request wins.
        app_dir: folder of the app's ``pyproject.toml`` (None: this checkout).

    Raises:
        RunConfigError: a setting is wrong (nothing recorded or submitted).
        ControlError: the SuperLink refused (the run is recorded as failed).
    """
    run_key = new_run_key()
    overrides = {
        **base_config,
        **dict(request.overrides),
        "num-server-rounds": request.rounds,
        "min-nodes": request.min_nodes,
        "strategy": request.strategy,
        "run-key": run_key,
    }
    unknown = set(overrides) - set(_RUN_CONFIG_KEYS)
    if unknown:
        raise RunConfigError(
            f"unknown run settings {sorted(unknown)}; known: {sorted(_RUN_CONFIG_KEYS)}"
        )
    settings = RunSettings.from_run_config(overrides)
    catalog.create_fl_run(
        FederatedRun(
            run_key=run_key,
            requested_by=requested_by,
            strategy=settings.strategy,
            rounds=settings.rounds,
            min_nodes=settings.min_nodes,
            settings={
                k: v
                for k, v in overrides.items()
                if k not in ("catalog", "catalog-schema")
            },
        )
    )
    try:
        flower_run_id = control.start_run(build_app_bundle(app_dir), overrides)
    except (ControlError, RunConfigError) as exc:
        catalog.update_fl_run(run_key, state=RunState.FAILED, detail=str(exc))
        raise
    run = catalog.update_fl_run(
        run_key, state=RunState.RUNNING, flower_run_id=flower_run_id
    )
    assert run is not None
    _LOGGER.info(
        "[run %s] submitted as SuperLink run %d by %s: %s, %d rounds, quorum %d",
        run_key,
        flower_run_id,
        requested_by,
        settings.strategy,
        settings.rounds,
        settings.min_nodes,
    )
    return run


def run_report(catalog: Catalog, run_key: str) -> RunReport | None:
    """Return a run with its rounds, None if unknown."""
    run = catalog.get_fl_run(run_key)
    if run is None:
        return None
    return RunReport(run, catalog.list_fl_rounds(run_key))


# Every run-config key the app declares (pyproject.toml [tool.flwr.app.config]).
_RUN_CONFIG_KEYS = (
    "num-server-rounds",
    "min-nodes",
    "strategy",
    "proximal-mu",
    "trim-beta",
    "dp-noise-multiplier",
    "dp-clipping-norm",
    "fraction-train",
    "round-timeout-s",
    "quorum-wait-s",
    "query-timeout-s",
    "epochs",
    "learning-rate",
    "l2",
    "class-weight-power",
    "cpu-budget-s",
    "initial-model",
    "catalog",
    "catalog-schema",
    "run-key",
    "out-dir",
)
