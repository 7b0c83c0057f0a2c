"""The Flower ServerApp the SuperLink runs for each federated run.

Reads the run's settings (:mod:`.settings`), starts from the head of the
current model (``initial-model``, else the shipped one), runs the rounds
(:mod:`.rounds`) with the strategy the run names (:mod:`.strategies`),
records every round and the run's end in the catalog, and writes the last
aggregated head to ``out-dir/head-<run-key>.json`` for the publication step
(rebuilding the TFLite model, the validation gate and TUF publication
happen after the run, on the coordinator; see ``cloud_coordinator.modelrepo``).

The catalog's URL comes from the run config (``catalog``); a PostgreSQL URL
should carry no password (use libpq's ``PGPASSFILE`` in the SuperLink's
environment), since run configs are stored by the SuperLink.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

from flwr.app import Context
from flwr.serverapp import Grid, ServerApp

from cloud_coordinator.catalog.fl_records import FederatedRound, RunState
from edge_agent.fl.applog import configure_app_logging
from models.head import ModelHead, load_head
from models.registry import metadata_path_for, shipped_model

from .errors import QuorumError
from .rounds import RunOutcome, run_rounds
from .settings import RunSettings
from .strategies import build_strategy

__all__ = ["app", "head_file_for", "initial_head", "write_head"]

_LOGGER = logging.getLogger(__name__)

HEAD_SCHEMA = "federated-head/1"

app = ServerApp()


def initial_head(settings: RunSettings) -> tuple[ModelHead, str]:
    """Return the head the run starts from and the metadata file it came from.

    Raises:
        ModelFileError, ModelMetadataError: the metadata is unreadable or has
            no valid ``head``.
    """
    if settings.initial_model:
        path = Path(settings.initial_model)
    else:
        path = metadata_path_for(shipped_model().path)
    return load_head(path), str(path)


def head_file_for(settings: RunSettings) -> Path | None:
    """Return where the run's aggregated head goes (None: no ``out-dir``)."""
    if not settings.out_dir:
        return None
    return Path(settings.out_dir) / f"head-{settings.run_key or 'run'}.json"


def write_head(path: Path, head: ModelHead, document: dict[str, Any]) -> None:
    """Write the head JSON atomically (temporary file, fsync, rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}")
    body = {"schema": HEAD_SCHEMA, "head": head.to_dict(), **document}
    with open(temporary, "w", encoding="utf-8") as stream:
        json.dump(body, stream, indent=2)
        stream.write("\n")
        stream.flush()
        os.fsync(stream.fileno())
    os.replace(temporary, path)


class _CatalogRecorder:
    """Round and run records into the catalog (or only the log without one)."""

    def __init__(self, settings: RunSettings) -> None:
        self._settings = settings
        self._catalog: Any = None
        if settings.catalog and settings.run_key:
            from cloud_coordinator.catalog.factory import open_catalog

            self._catalog = open_catalog(
                settings.catalog, schema=settings.catalog_schema or None
            )
            self._catalog.migrate()

    def record_round(self, record: FederatedRound) -> None:
        if self._catalog is not None:
            self._catalog.record_fl_round(record)

    def run_state(
        self,
        state: RunState,
        *,
        flower_run_id: int | None = None,
        detail: str | None = None,
        result: dict[str, Any] | None = None,
    ) -> None:
        if self._catalog is not None:
            self._catalog.update_fl_run(
                self._settings.run_key,
                state=state,
                flower_run_id=flower_run_id,
                detail=detail,
                result=result,
            )


@app.main()
def main(grid: Grid, context: Context) -> None:
    """Run one federated run on the SuperLink's grid."""
    configure_app_logging("cloud_coordinator", "edge_agent", "models")
    settings = RunSettings.from_run_config(dict(context.run_config))
    label = f"[run {settings.run_key or context.run_id}]"
    recorder = _CatalogRecorder(settings)
    recorder.run_state(RunState.RUNNING, flower_run_id=int(context.run_id))
    try:
        start, source = initial_head(settings)
        _LOGGER.info(
            "%s %s, %d rounds, quorum %d, from the head of %s",
            label,
            settings.strategy,
            settings.rounds,
            settings.min_nodes,
            source,
        )
        outcome: RunOutcome = run_rounds(
            grid, build_strategy(settings), settings, start, recorder
        )
    except QuorumError as exc:
        recorder.run_state(RunState.FAILED, detail=f"no quorum: {exc}")
        return
    except Exception as exc:
        _LOGGER.exception("%s failed", label)
        recorder.run_state(RunState.FAILED, detail=f"{type(exc).__name__}: {exc}")
        raise

    result: dict[str, Any] = {
        "aggregated_rounds": outcome.aggregated_rounds,
        "initial_model": source,
        "head": outcome.head.to_dict(),
    }
    path = head_file_for(settings)
    if path is not None:
        write_head(
            path,
            outcome.head,
            {
                "run_key": settings.run_key,
                "flower_run_id": int(context.run_id),
                "initial_model": source,
                "aggregated_rounds": outcome.aggregated_rounds,
                "strategy": settings.strategy,
            },
        )
        result["head_file"] = str(path)
    if outcome.aggregated_rounds == 0:
        recorder.run_state(
            RunState.FAILED, detail="no round aggregated a head", result=result
        )
        return
    recorder.run_state(RunState.FINISHED, result=result)
    _LOGGER.info(
        "%s finished: %d of %d rounds aggregated, head in %s",
        label,
        outcome.aggregated_rounds,
        settings.rounds,
        path,
    )
