"""The gateway's ClientApp, called as its SuperNode calls it, and head training."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from fl_helpers import Shift, make_gateway
from flwr.app import ConfigRecord, Context, Message, RecordDict
from flwr.app.message_type import MessageType
from flwr.supercore.task_identity import TaskIdentity

from edge_agent.fl import TrainingSettings, train_head
from edge_agent.fl.client_app import app
from edge_agent.fl.records import ERROR_NOT_ELIGIBLE, head_to_arrays
from models.head import ModelHead, load_head
from models.registry import metadata_path_for

# The largest head the contract allows, in bytes: 64 kernel values and a bias.
MAX_HEAD_BYTES = (64 + 1) * 4


@pytest.fixture(autouse=True)
def _task_identity() -> None:
    """Give messages built here a run and task, as Flower's app process does."""
    TaskIdentity.run_id = 1
    TaskIdentity.task_id = 1
    TaskIdentity.node_id = 0


def _context(node_config: dict[str, object]) -> Context:
    return Context(
        run_id=1,
        node_id=7,
        node_config=node_config,  # type: ignore[arg-type]
        state=RecordDict(),
        run_config={},
    )


def _ask(kind: str, content: RecordDict, node_config: dict[str, object]) -> Message:
    message = Message(content, dst_node_id=7, message_type=kind)
    reply: Message = app(message, _context(node_config))
    return reply


def _assert_only_head_and_scalars(reply: Message) -> int:
    """Check a reply carries a model-sized head and scalar figures; return bytes."""
    content = reply.content
    assert len(content.config_records) == 0
    assert len(content.metric_records) == 1
    for value in next(iter(content.metric_records.values())).values():
        assert isinstance(value, int | float) and not isinstance(value, bool)
    total = 0
    for record in content.array_records.values():
        assert sorted(record.keys()) == ["bias", "kernel"]
        for array in record.values():
            values = array.numpy()
            assert values.dtype == np.float32 and values.ndim == 1
            total += values.nbytes
    assert total <= MAX_HEAD_BYTES
    return total


@pytest.fixture(scope="module")
def gateway_config(
    tmp_path_factory: pytest.TempPathFactory, fl_model: Path
) -> dict[str, object]:
    root = tmp_path_factory.mktemp("gw")
    gateway = make_gateway(
        root, "gw-x", range(950000, 950010), [], shift=Shift.flipped_mount(0.3)
    )
    return gateway.node_config(fl_model, **{"holdout-fraction": 0.3})


def test_fl_client_messages_carry_only_the_head_and_figures(
    gateway_config: dict[str, object], fl_model: Path
) -> None:
    start = load_head(metadata_path_for(fl_model))
    query = _ask(
        MessageType.QUERY, RecordDict({"config": ConfigRecord()}), gateway_config
    )
    metrics = query.content.metric_records["metrics"]
    assert metrics["eligible"] == 1 and int(metrics["labelled-windows"]) >= 100
    reason = str(query.content.config_records["config"]["reason"])
    assert reason.startswith("eligible") and len(reason) < 300

    train = _ask(
        MessageType.TRAIN,
        RecordDict(
            {
                "arrays": head_to_arrays(start),
                "config": ConfigRecord({"server-round": 1, "epochs": 50}),
            }
        ),
        gateway_config,
    )
    assert not train.has_error(), train.error.reason if train.has_error() else ""
    assert _assert_only_head_and_scalars(train) == (32 + 1) * 4
    figures = train.content.metric_records["metrics"]
    assert figures["train-loss"] < figures["train-loss-before"]
    assert figures["epochs"] == 50

    evaluate = _ask(
        MessageType.EVALUATE,
        RecordDict({"arrays": train.content.array_records["arrays"]}),
        gateway_config,
    )
    assert not evaluate.has_error(), (
        evaluate.error.reason if evaluate.has_error() else ""
    )
    _assert_only_head_and_scalars(evaluate)
    assert len(evaluate.content.array_records) == 0
    assert int(evaluate.content.metric_records["metrics"]["num-examples"]) > 0


def test_fl_client_declines_when_not_eligible(
    gateway_config: dict[str, object], fl_model: Path, tmp_path: Path
) -> None:
    power = Path(str(gateway_config["power-supply-root"]))
    (power / "AC" / "online").write_text("0\n")
    (power / "BAT0" / "status").write_text("Discharging\n")
    try:
        reply = _ask(
            MessageType.TRAIN,
            RecordDict(
                {
                    "arrays": head_to_arrays(load_head(metadata_path_for(fl_model))),
                    "config": ConfigRecord({"server-round": 2}),
                }
            ),
            gateway_config,
        )
    finally:
        (power / "AC" / "online").write_text("1\n")
        (power / "BAT0" / "status").write_text("Charging\n")
    assert reply.has_error() and reply.error.code == ERROR_NOT_ELIGIBLE
    assert "battery" in str(reply.error.reason)

    too_few = dict(gateway_config, **{"min-windows": 10**6})
    query = _ask(MessageType.QUERY, RecordDict({"config": ConfigRecord()}), too_few)
    assert query.content.metric_records["metrics"]["eligible"] == 0
    assert "too few labelled windows" in str(
        query.content.config_records["config"]["reason"]
    )


def test_fl_client_refuses_a_head_that_is_not_model_sized(
    gateway_config: dict[str, object],
) -> None:
    bad = head_to_arrays(ModelHead(np.ones(16, dtype=np.float32), 0.0))
    reply = _ask(
        MessageType.TRAIN,
        RecordDict({"arrays": bad, "config": ConfigRecord({"server-round": 1})}),
        gateway_config,
    )
    assert reply.has_error() and "16 values" in str(reply.error.reason)


def test_fl_head_training_class_weights_proximal_term_and_cpu_budget() -> None:
    rng = np.random.default_rng(3)
    e = rng.normal(size=(2000, 8)).astype(np.float32)
    true_w = rng.normal(size=8)
    y = (e @ true_w > 3.5).astype(np.int8)  # rare positives, as crashes are
    start = ModelHead(np.zeros(8, np.float32), 0.0)

    free = train_head(e, y, start, TrainingSettings(epochs=200))
    assert free.loss_after < free.loss_before
    assert 0 < free.positives < 100
    tied = train_head(e, y, start, TrainingSettings(epochs=200, proximal_mu=50.0))
    # The proximal term keeps the head close to where the round started.
    assert np.linalg.norm(tied.head.kernel) < np.linalg.norm(free.head.kernel)

    short = train_head(e, y, start, TrainingSettings(epochs=10**6, cpu_budget_s=0.05))
    assert short.epochs_run < 10**6 and math.isfinite(short.loss_after)
