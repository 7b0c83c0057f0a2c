"""Server strategies from Flower: FedAvg weighting, robust aggregation, central DP."""

from __future__ import annotations

import numpy as np
import pytest
from flwr.app import Message, MetricRecord, RecordDict
from flwr.serverapp.strategy import (
    DifferentialPrivacyServerSideFixedClipping,
    FedAvg,
    FedMedian,
    FedProx,
    FedTrimmedAvg,
)
from flwr.supercore.task_identity import TaskIdentity

from cloud_coordinator.fl.errors import RunConfigError
from cloud_coordinator.fl.settings import RunSettings
from cloud_coordinator.fl.strategies import build_strategy
from edge_agent.fl.records import head_from_arrays, head_to_arrays
from models.head import ModelHead

K = 8


@pytest.fixture(autouse=True)
def _task_identity() -> None:
    TaskIdentity.run_id = 1
    TaskIdentity.task_id = 1
    TaskIdentity.node_id = 0


def _replies(kernels: list[float], examples: list[int]) -> list[Message]:
    replies = []
    for node, (value, count) in enumerate(zip(kernels, examples, strict=True), 1):
        asked = Message(RecordDict(), dst_node_id=node, message_type="train")
        head = ModelHead(np.full(K, value, dtype=np.float32), value)
        content = RecordDict(
            {
                "arrays": head_to_arrays(head),
                "metrics": MetricRecord({"num-examples": count, "train-loss": 0.1}),
            }
        )
        replies.append(Message(content, reply_to=asked))
    return replies


def _aggregate(
    settings: RunSettings, kernels: list[float], examples: list[int]
) -> float:
    strategy = build_strategy(settings)
    if isinstance(strategy, DifferentialPrivacyServerSideFixedClipping):
        strategy.current_arrays = head_to_arrays(
            ModelHead(np.zeros(K, np.float32), 0.0)
        )
    arrays, _ = strategy.aggregate_train(1, _replies(kernels, examples))
    assert arrays is not None
    return float(head_from_arrays(arrays).kernel[0])


def test_fl_strategy_choice_and_checks() -> None:
    assert type(build_strategy(RunSettings())) is FedAvg
    assert isinstance(build_strategy(RunSettings(strategy="median")), FedMedian)
    trimmed = build_strategy(RunSettings(strategy="trimmed-mean", trim_beta=0.34))
    assert isinstance(trimmed, FedTrimmedAvg) and trimmed.beta == 0.34
    prox = build_strategy(RunSettings(strategy="fedprox", proximal_mu=0.1))
    assert isinstance(prox, FedProx) and prox.proximal_mu == 0.1
    with pytest.raises(RunConfigError, match="proximal-mu"):
        RunSettings.from_run_config({"strategy": "fedprox"})
    with pytest.raises(RunConfigError, match="strategy"):
        RunSettings.from_run_config({"strategy": "fedsgd"})
    with pytest.raises(RunConfigError, match="dp-clipping-norm"):
        RunSettings.from_run_config({"dp-noise-multiplier": 1.0})
    with pytest.raises(RunConfigError, match="min-nodes"):
        RunSettings.from_run_config({"min-nodes": 0})


def test_fl_fedavg_weights_by_examples_robust_rules_ignore_an_outlier() -> None:
    # Two honest gateways near 1.0, one sending 100.0 and claiming more data.
    kernels, examples = [1.0, 1.2, 100.0], [100, 100, 300]
    fedavg = _aggregate(RunSettings(min_nodes=3), kernels, examples)
    assert fedavg == pytest.approx((100 + 120 + 30000) / 500, rel=1e-5)
    median = _aggregate(RunSettings(strategy="median", min_nodes=3), kernels, examples)
    assert median == pytest.approx(1.2)
    trimmed = _aggregate(
        RunSettings(strategy="trimmed-mean", trim_beta=0.34, min_nodes=3),
        kernels,
        examples,
    )
    assert trimmed == pytest.approx(1.2)


def test_fl_central_dp_clips_updates_and_adds_noise() -> None:
    settings = RunSettings(min_nodes=3, dp_noise_multiplier=0.01, dp_clipping_norm=0.5)
    values = [
        _aggregate(settings, [10.0, 10.0, 10.0], [100, 100, 100]) for _ in range(2)
    ]
    # Every update (norm 10 * sqrt(K + 1)) is clipped to 0.5 before averaging.
    clipped = 10.0 * 0.5 / (10.0 * np.sqrt(K + 1))
    for value in values:
        assert abs(value - clipped) < 0.05
    assert values[0] != values[1]  # Gaussian noise differs per aggregation
