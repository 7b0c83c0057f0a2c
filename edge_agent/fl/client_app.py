"""The Flower ClientApp a gateway's SuperNode runs: eligibility, training, evaluation.

Three message types arrive from the coordinator's ServerApp:

* ``query``: is this gateway eligible now (:mod:`.eligibility`)? The reply's
  metrics say ``eligible`` (0/1) and the window counts; its config the reason.
* ``train``: the global head in ``arrays``, settings in ``config``. The
  gateway checks eligibility again (conditions change between rounds: a
  gateway whose suit stops charging on the same dock loses external power),
  computes embeddings of its labelled training windows with its active
  TFLite model (LiteRT), fine-tunes the head in NumPy (:mod:`.training`) and
  replies with the new head and figures. Not eligible: an error reply with
  code ``ERROR_NOT_ELIGIBLE`` and the reason, so the server goes on without
  it at once instead of waiting for the round's deadline.
* ``evaluate``: figures of the given head on the gateway's held-out windows
  (the logs whose id hashes into ``holdout-fraction``; never trained on).

Everything the gateway needs to know comes from the SuperNode's
``--node-config`` (:mod:`.settings`). Training runs at a low CPU priority
(nice 10) so the agent's own work goes first.
"""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from flwr.app import ConfigRecord, Context, Error, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp

from models.errors import ModelError

from .applog import configure_app_logging
from .eligibility import check_eligibility
from .errors import FederatedError
from .records import (
    ARRAYS_KEY,
    CONFIG_KEY,
    ERROR_NOT_ELIGIBLE,
    ERROR_TRAINING_FAILED,
    METRICS_KEY,
    head_from_arrays,
    head_to_arrays,
)
from .settings import NodeSettings
from .store import WindowStore
from .training import TrainingSettings, evaluate_head, train_head

__all__ = ["app", "split_holdout"]

_LOGGER = logging.getLogger(__name__)

# Training yields the CPU to the agent (BLE pulls, processing, uploads).
_TRAINING_NICENESS = 10

app = ClientApp()


@dataclass(frozen=True)
class _LocalData:
    embeddings: npt.NDArray[np.float32]
    labels: npt.NDArray[np.int8]
    threshold: float


def split_holdout(log_ids: list[str], fraction: float) -> npt.NDArray[np.bool_]:
    """Return which windows are held out: those of logs hashing below ``fraction``.

    The split is by log so neighbouring, overlapping windows never land on
    both sides, and it is stable as the store grows.
    """
    holdout = np.zeros(len(log_ids), dtype=bool)
    cache: dict[str, bool] = {}
    for i, log_id in enumerate(log_ids):
        if log_id not in cache:
            digest = hashlib.sha256(log_id.encode()).digest()
            cache[log_id] = int.from_bytes(digest[:4], "big") / 2**32 < fraction
        holdout[i] = cache[log_id]
    return holdout


def _local_data(settings: NodeSettings, *, holdout: bool) -> _LocalData:
    # Imported here: an eligibility query needs neither LiteRT nor the model.
    from models.registry import load_model_info, shipped_model
    from models.runtime import CrashModelRunner

    # The model manager's ``active`` link is absent until a first update:
    # the agent then runs the shipped model, and so does training.
    info = (
        load_model_info(settings.model) if settings.model.exists() else shipped_model()
    )
    with WindowStore(settings.window_store) as store:
        windows, labels, log_ids = store.labelled()
    mask = split_holdout(log_ids, settings.holdout_fraction)
    if not holdout:
        mask = ~mask
    runner = CrashModelRunner.from_info(info)
    embeddings = runner.predict(windows[mask]).embedding
    return _LocalData(embeddings, labels[mask], info.metadata.threshold)


def _settings(context: Context) -> NodeSettings:
    configure_app_logging("edge_agent", "models")
    return NodeSettings.from_node_config(dict(context.node_config))


def _training_settings(config: ConfigRecord, node: NodeSettings) -> TrainingSettings:
    defaults = TrainingSettings()

    def number(key: str, default: float) -> float:
        value = config.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise FederatedError(f"config {key!r}: expected a number, found {value!r}")
        return float(value)

    server_budget = number("cpu-budget-s", node.cpu_budget_s)
    return TrainingSettings(
        epochs=int(number("epochs", defaults.epochs)),
        learning_rate=number("learning-rate", defaults.learning_rate),
        l2=number("l2", defaults.l2),
        proximal_mu=number("proximal-mu", defaults.proximal_mu),
        class_weight_power=number("class-weight-power", defaults.class_weight_power),
        cpu_budget_s=min(server_budget, node.cpu_budget_s),
    )


def _round_of(message: Message) -> int:
    config = message.content.config_records.get(CONFIG_KEY, ConfigRecord())
    value = config.get("server-round", 0)
    return int(value) if isinstance(value, int) else 0


@app.query()
def query(message: Message, context: Context) -> Message:
    """Reply whether this gateway may train now, with its window counts."""
    try:
        settings = _settings(context)
        with WindowStore(settings.window_store) as store:
            eligibility = check_eligibility(settings, store.counts())
    except (FederatedError, OSError) as exc:
        _LOGGER.error("eligibility query failed: %s", exc)
        return Message(Error(ERROR_TRAINING_FAILED, str(exc)), reply_to=message)
    counts = eligibility.counts
    _LOGGER.info("[%s] eligibility: %s", settings.gateway_id, eligibility.reason)
    return Message(
        RecordDict(
            {
                METRICS_KEY: MetricRecord(
                    {
                        "eligible": int(eligibility.eligible),
                        "labelled-windows": counts.labelled,
                        "positives": counts.positives,
                    }
                ),
                CONFIG_KEY: ConfigRecord({"reason": eligibility.reason}),
            }
        ),
        reply_to=message,
    )


@app.train()
def train(message: Message, context: Context) -> Message:
    """Fine-tune the received head on local windows and reply with it."""
    server_round = _round_of(message)
    try:
        settings = _settings(context)
        with WindowStore(settings.window_store) as store:
            eligibility = check_eligibility(settings, store.counts())
        if not eligibility.eligible:
            _LOGGER.info(
                "[%s, round %d] not taking part: %s",
                settings.gateway_id,
                server_round,
                eligibility.reason,
            )
            return Message(
                Error(ERROR_NOT_ELIGIBLE, eligibility.reason), reply_to=message
            )
        os.setpriority(os.PRIO_PROCESS, 0, _TRAINING_NICENESS)
        config = message.content.config_records.get(CONFIG_KEY, ConfigRecord())
        training = _training_settings(config, settings)
        data = _local_data(settings, holdout=False)
        start = head_from_arrays(
            message.content.array_records[ARRAYS_KEY],
            expected_dim=data.embeddings.shape[1],
        )
        result = train_head(data.embeddings, data.labels, start, training)
    except (FederatedError, ModelError, OSError) as exc:
        _LOGGER.error("[round %d] training failed: %s", server_round, exc)
        return Message(Error(ERROR_TRAINING_FAILED, str(exc)), reply_to=message)

    _LOGGER.info(
        "[%s, round %d] head trained on %d windows (%d crash): loss %.4f -> %.4f, "
        "%d epochs, %.2f CPU s",
        settings.gateway_id,
        server_round,
        result.examples,
        result.positives,
        result.loss_before,
        result.loss_after,
        result.epochs_run,
        result.cpu_s,
    )
    metrics = MetricRecord(
        {
            "num-examples": result.examples,
            "positives": result.positives,
            "train-loss-before": result.loss_before,
            "train-loss": result.loss_after,
            "epochs": result.epochs_run,
            "cpu-s": result.cpu_s,
        }
    )
    return Message(
        RecordDict({ARRAYS_KEY: head_to_arrays(result.head), METRICS_KEY: metrics}),
        reply_to=message,
    )


@app.evaluate()
def evaluate(message: Message, context: Context) -> Message:
    """Reply with the received head's figures on the held-out windows."""
    server_round = _round_of(message)
    try:
        settings = _settings(context)
        data = _local_data(settings, holdout=True)
        if len(data.labels) == 0:
            raise FederatedError("no held-out windows to evaluate on")
        head = head_from_arrays(
            message.content.array_records[ARRAYS_KEY],
            expected_dim=data.embeddings.shape[1],
        )
        figures = evaluate_head(
            data.embeddings, data.labels, head, threshold=data.threshold
        )
    except (FederatedError, ModelError, OSError) as exc:
        _LOGGER.error("[round %d] evaluation failed: %s", server_round, exc)
        return Message(Error(ERROR_TRAINING_FAILED, str(exc)), reply_to=message)
    _LOGGER.info(
        "[%s, round %d] evaluated on %d held-out windows: loss %.4f, recall %.3f",
        settings.gateway_id,
        server_round,
        figures.examples,
        figures.loss,
        figures.recall,
    )
    metrics = MetricRecord(
        {
            "num-examples": figures.examples,
            "eval-loss": figures.loss,
            "eval-recall": 0.0 if np.isnan(figures.recall) else figures.recall,
            "eval-false-positive-rate": figures.false_positives
            / max(1, figures.examples - figures.positives),
        }
    )
    return Message(RecordDict({METRICS_KEY: metrics}), reply_to=message)
