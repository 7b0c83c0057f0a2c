"""The round loop of a run: eligible gateways, quorum, deadline, aggregation.

Flower's ``Strategy.start`` samples from every connected node and waits
without limit until enough are connected; a gateway fleet needs more. Each
round here

1. asks every connected gateway whether it is eligible now (a ``query``
   message) and collects the answers until ``min-nodes`` said yes and
   everyone answered or ``query-timeout-s`` passed; without a quorum
   within ``quorum-wait-s`` the round ends ``no_quorum`` and the run
   fails, the global head unchanged;
2. lets the strategy sample among the eligible gateways only (it is shown
   a view of the grid that lists just those) and sends the training
   messages with the round's deadline (``round-timeout-s``): a gateway that
   went away, or stopped being eligible and says so, does not hold the
   round up;
3. aggregates when at least ``min-nodes`` gateways replied with a head
   (otherwise ``too_few_replies``: the head stays as it was and the next
   round runs), checks the aggregate is a finite, model-sized head, and
4. evaluates the new head on the same gateways' held-out windows.

Every round's outcome goes to the ``RoundRecorder`` (the catalog).
Log lines start with ``[run <key>, round <n>]``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from flwr.app import ArrayRecord, ConfigRecord, Message, MetricRecord, RecordDict
from flwr.app.message_type import MessageType
from flwr.serverapp import Grid
from flwr.serverapp.strategy import Strategy

from cloud_coordinator.catalog.fl_records import FederatedRound, RoundStatus
from edge_agent.fl.errors import TrainingError
from edge_agent.fl.records import (
    CONFIG_KEY,
    METRICS_KEY,
    head_from_arrays,
    head_to_arrays,
)
from models.head import ModelHead

from .errors import QuorumError
from .settings import RunSettings

__all__ = ["EligibleGrid", "RoundRecorder", "RunOutcome", "run_rounds"]

_LOGGER = logging.getLogger(__name__)

# Between looks for answers while waiting for a quorum (a SuperLink request;
# gateways are asked again only after query-timeout-s).
_QUORUM_POLL_S = 2.0


class RoundRecorder(Protocol):
    """Where round outcomes go (the catalog, or a list in tests)."""

    def record_round(self, record: FederatedRound) -> None:
        """Store one round's outcome."""
        ...


class EligibleGrid(Grid):
    """A view of a grid that lists only the given nodes; the rest delegates."""

    def __init__(self, grid: Grid, node_ids: Iterable[int]) -> None:
        """Show ``grid`` with only ``node_ids`` connected."""
        self._grid = grid
        self._node_ids = list(node_ids)

    def set_run(self, run: Any) -> None:
        """Delegate to the wrapped grid."""
        self._grid.set_run(run)

    @property
    def run(self) -> Any:
        """Return the wrapped grid's run."""
        return self._grid.run

    def create_message(self, *args: Any, **kwargs: Any) -> Message:
        """Delegate to the wrapped grid."""
        return self._grid.create_message(*args, **kwargs)

    def get_node_ids(self) -> Iterable[int]:
        """Return the eligible nodes only."""
        return list(self._node_ids)

    def push_messages(self, messages: Iterable[Message]) -> Iterable[str]:
        """Delegate to the wrapped grid."""
        return self._grid.push_messages(messages)

    def pull_messages(self, message_ids: Iterable[str]) -> Iterable[Message]:
        """Delegate to the wrapped grid."""
        return self._grid.pull_messages(message_ids)

    def send_and_receive(
        self, messages: Iterable[Message], *, timeout: float | None = None
    ) -> Iterable[Message]:
        """Delegate to the wrapped grid."""
        return self._grid.send_and_receive(messages, timeout=timeout)


@dataclass
class RunOutcome:
    """What a run produced: the last good head and the rounds' records."""

    head: ModelHead
    rounds: list[FederatedRound] = field(default_factory=list)

    @property
    def aggregated_rounds(self) -> int:
        """Return how many rounds produced a new head."""
        return sum(1 for r in self.rounds if r.status == RoundStatus.AGGREGATED)


def _metric(record: MetricRecord | None, key: str) -> float | None:
    if record is None or key not in record:
        return None
    value = record[key]
    return float(value) if isinstance(value, int | float) else None


def _query_message(node_id: int) -> Message:
    return Message(
        RecordDict({CONFIG_KEY: ConfigRecord({"question": "eligible"})}),
        dst_node_id=node_id,
        message_type=MessageType.QUERY,
    )


def _wait_for_quorum(
    grid: Grid,
    settings: RunSettings,
    label: str,
    clock: Callable[[], float],
    sleep: Callable[[float], None],
) -> list[int]:
    """Return at least ``min-nodes`` eligible node ids, or raise QuorumError.

    Each connected gateway is asked once; replies are collected as they come
    (a slow gateway's late answer still counts), gateways that connect later
    are asked too, and one that said "not eligible" is asked again after
    ``query-timeout-s``. The wait ends when every asked gateway answered and
    the quorum is met, or when ``query-timeout-s`` has passed and it is met.
    """
    started = clock()
    deadline = started + settings.quorum_wait_s
    asked: dict[int, tuple[str, float]] = {}  # node -> (message id, asked at)
    answers: dict[int, Message] = {}
    queries = 0
    while True:
        now = clock()
        # Ask the gateways not asked yet, and again those that declined long ago.
        to_ask = []
        for node in grid.get_node_ids():
            if node not in asked or (
                node in answers
                and now - asked[node][1] >= settings.query_timeout_s
                and _metric(_metrics_of(answers[node]), "eligible") != 1
            ):
                to_ask.append(node)
        if to_ask:
            ids = list(grid.push_messages([_query_message(n) for n in to_ask]))
            queries += len(ids)
            for node, message_id in zip(to_ask, ids, strict=True):
                asked[node] = (message_id, now)
                answers.pop(node, None)

        # Collect what has come back.
        waiting = {asked[n][0]: n for n in asked if n not in answers}
        if waiting:
            for reply in grid.pull_messages(list(waiting)):
                answered = waiting.get(reply.metadata.reply_to_message_id)
                if answered is not None:
                    answers[answered] = reply
        eligible = [
            n for n, r in answers.items() if _metric(_metrics_of(r), "eligible") == 1
        ]
        quorum = len(eligible) >= settings.min_nodes
        everyone = len(answers) == len(asked)
        if quorum and (everyone or clock() - started >= settings.query_timeout_s):
            _LOGGER.info(
                "%s %d of %d asked gateways eligible",
                label,
                len(eligible),
                len(asked),
            )
            return sorted(eligible)
        if clock() >= deadline:
            reasons = {n: _reason(answers.get(n)) for n in asked}
            why = "; ".join(f"node {n}: {r}" for n, r in sorted(reasons.items()))
            raise QuorumError(
                f"{len(eligible)} eligible gateways of {len(asked)} asked "
                f"({queries} questions) in {settings.quorum_wait_s:g} s, need "
                f"{settings.min_nodes}" + (f" ({why})" if why else "")
            )
        sleep(_QUORUM_POLL_S)


def _metrics_of(reply: Message) -> MetricRecord | None:
    if reply.has_error():
        return None
    return reply.content.metric_records.get(METRICS_KEY)


def _reason(reply: Message | None) -> str:
    if reply is None:
        return "no answer yet"
    if reply.has_error():
        return f"error: {reply.error.reason}"
    config = reply.content.config_records.get(CONFIG_KEY, ConfigRecord())
    return str(config.get("reason", ""))


def _training_config(settings: RunSettings) -> ConfigRecord:
    return ConfigRecord(
        {
            "epochs": settings.epochs,
            "learning-rate": settings.learning_rate,
            "l2": settings.l2,
            "class-weight-power": settings.class_weight_power,
            "cpu-budget-s": settings.cpu_budget_s,
        }
    )


def run_rounds(
    grid: Grid,
    strategy: Strategy,
    settings: RunSettings,
    initial: ModelHead,
    recorder: RoundRecorder,
    *,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> RunOutcome:
    """Run ``settings.rounds`` rounds from ``initial``; see the module docstring.

    Raises:
        QuorumError: a round found too few eligible gateways in time (its
            record is stored first).
    """
    outcome = RunOutcome(initial)
    arrays: ArrayRecord = head_to_arrays(initial)
    for server_round in range(1, settings.rounds + 1):
        label = f"[run {settings.run_key or '-'}, round {server_round}]"
        started = clock()

        # 1. Who may train now.
        try:
            eligible = _wait_for_quorum(grid, settings, label, clock, sleep)
        except QuorumError as exc:
            record = FederatedRound(
                run_key=settings.run_key or "-",
                round=server_round,
                status=RoundStatus.NO_QUORUM,
                sampled=0,
                participants=0,
                declined=0,
                duration_s=clock() - started,
                detail=str(exc),
            ).validated()
            outcome.rounds.append(record)
            recorder.record_round(record)
            _LOGGER.error("%s no quorum: %s", label, exc)
            raise

        # 2. Train on the eligible gateways, bounded by the deadline.
        view = EligibleGrid(grid, eligible)
        messages = list(
            strategy.configure_train(
                server_round, arrays, _training_config(settings), view
            )
        )
        replies = list(
            grid.send_and_receive(messages, timeout=settings.round_timeout_s)
        )
        good = [r for r in replies if not r.has_error()]
        declined = len(replies) - len(good)
        missing = len(messages) - len(replies)
        for reply in replies:
            if reply.has_error():
                _LOGGER.info(
                    "%s node %d declined: %s",
                    label,
                    reply.metadata.src_node_id,
                    reply.error.reason,
                )
        if missing:
            _LOGGER.warning(
                "%s %d gateways did not reply within %g s",
                label,
                missing,
                settings.round_timeout_s,
            )

        # 3. Aggregate when the quorum replied.
        train_metrics: MetricRecord | None = None
        status = RoundStatus.TOO_FEW_REPLIES
        detail: str | None = (
            f"{len(good)} heads received, quorum {settings.min_nodes}"
            if len(good) < settings.min_nodes
            else None
        )
        if len(good) >= settings.min_nodes:
            new_arrays, train_metrics = strategy.aggregate_train(server_round, good)
            try:
                if new_arrays is None:
                    raise TrainingError("the strategy returned no aggregate")
                head = head_from_arrays(new_arrays, expected_dim=initial.embedding_dim)
            except TrainingError as exc:
                detail = f"aggregate refused: {exc}"
                _LOGGER.error("%s %s", label, detail)
            else:
                arrays = new_arrays
                outcome.head = head
                status = RoundStatus.AGGREGATED

        # 4. Evaluate the current head where it was trained.
        eval_metrics: MetricRecord | None = None
        if status == RoundStatus.AGGREGATED:
            eval_view = EligibleGrid(grid, [r.metadata.src_node_id for r in good])
            eval_messages = list(
                strategy.configure_evaluate(
                    server_round, arrays, ConfigRecord(), eval_view
                )
            )
            eval_replies = list(
                grid.send_and_receive(eval_messages, timeout=settings.round_timeout_s)
            )
            eval_metrics = strategy.aggregate_evaluate(server_round, eval_replies)

        record = FederatedRound(
            run_key=settings.run_key or "-",
            round=server_round,
            status=status,
            sampled=len(messages),
            participants=len(good),
            declined=declined + missing,
            duration_s=clock() - started,
            train_loss=_metric(train_metrics, "train-loss"),
            eval_loss=_metric(eval_metrics, "eval-loss"),
            eval_recall=_metric(eval_metrics, "eval-recall"),
            eval_false_positive_rate=_metric(eval_metrics, "eval-false-positive-rate"),
            detail=detail,
            metrics={
                "train": {} if train_metrics is None else dict(train_metrics),
                "evaluate": {} if eval_metrics is None else dict(eval_metrics),
            },
        ).validated()
        outcome.rounds.append(record)
        recorder.record_round(record)
        _LOGGER.info(
            "%s %s: %d of %d sampled replied, train loss %s, eval loss %s, "
            "eval recall %s (%.1f s)",
            label,
            status.value,
            len(good),
            len(messages),
            record.train_loss,
            record.eval_loss,
            record.eval_recall,
            record.duration_s,
        )
    return outcome
