"""Federated runs on a real SuperLink and real SuperNodes on loopback.

The SuperLink and the SuperNodes run ``--insecure``: these tests stay on
127.0.0.1 (``test_fl_tls`` covers TLS and SuperNode authentication). Each
emulated gateway is a SuperNode whose ClientApp trains on a window store of
synthesised rides. The timeouts below bound waiting; nothing asserts speed.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from fl_helpers import (
    EmulatedGateway,
    FlowerProcess,
    Shift,
    event_figures_for,
    make_gateway,
    start_superlink,
    start_supernode,
    wait_for,
)

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "modelrepo"))
from modelrepo_env import make_world

from cloud_coordinator.catalog import SqliteCatalog
from cloud_coordinator.catalog.fl_records import RoundStatus, RunState
from cloud_coordinator.fl.control import ControlClient
from cloud_coordinator.fl.runs import RunRequest, start_run
from cloud_coordinator.modelrepo import ValidationSet
from edge_agent.modelmgr import UpdateResult
from models import evaluation
from models.dataset import split_seeds
from models.evaluation import EventFigures
from models.head import ModelHead, load_head
from models.metadata import DecisionRule
from models.registry import load_model_info, metadata_path_for
from models.runtime import CrashModelRunner

pytestmark = pytest.mark.timeout(420)

# Bounds on waiting for a run on this shared machine (not speed targets).
RUN_TIMEOUT_S = 300.0
# Short deadlines so a gateway that went away costs seconds, not minutes.
FAST_RUN = {
    "query-timeout-s": 30.0,
    "round-timeout-s": 180.0,
    "quorum-wait-s": 180.0,
}


def _say(text: str) -> None:
    sys.stdout.write(text + "\n")


def _figures(label: str, figures: EventFigures) -> str:
    return (
        f"{label}: {figures.detected}/{figures.crashes} crashes detected "
        f"(recall {figures.recall:.2f}), {figures.false_alarms} false alarms "
        f"in {figures.riding_h:.2f} h"
    )


def _head_of(result: dict[str, object] | None) -> ModelHead:
    assert result is not None, "the run recorded no result"
    head = result["head"]
    assert isinstance(head, dict)
    return ModelHead(np.asarray(head["kernel"], dtype=np.float32), float(head["bias"]))


class World:
    """A SuperLink, its SuperNodes and a catalog, stopped at the end."""

    def __init__(self, root: Path, model: Path) -> None:
        self.root = root
        self.model = model
        self.catalog_path = root / "catalog.db"
        self.catalog = SqliteCatalog(self.catalog_path)
        self.catalog.migrate()
        self.superlink, self.address = start_superlink(root / "superlink")
        self.nodes: dict[str, FlowerProcess] = {}

    def add_node(self, gateway: EmulatedGateway, name: str | None = None) -> None:
        name = name or gateway.name
        self.nodes[name] = start_supernode(
            self.root / "nodes", name, self.address, gateway.node_config(self.model)
        )

    def run(self, request: RunRequest, *, during: object = None) -> str:
        """Start a run, call ``during(run_key)`` after round 1, wait for its end."""
        with ControlClient(self.address, insecure=True) as control:
            run = start_run(
                self.catalog,
                control,
                request,
                requested_by="test-rnd",
                base_config={
                    "catalog": f"sqlite:{self.catalog_path}",
                    "out-dir": str(self.root / "heads"),
                    "initial-model": str(metadata_path_for(self.model)),
                    **FAST_RUN,
                },
            )
        key = run.run_key
        if during is not None:
            wait_for(
                lambda: len(self.catalog.list_fl_rounds(key)) >= 1 or self._ended(key),
                RUN_TIMEOUT_S,
                f"round 1 of run {key}",
                poll_s=1.0,
            )
            during(key)  # type: ignore[operator]
        wait_for(lambda: self._ended(key), RUN_TIMEOUT_S, f"the end of run {key}", 1.0)
        return key

    def _ended(self, key: str) -> bool:
        run = self.catalog.get_fl_run(key)
        return run is not None and run.state.finished

    def stop(self) -> None:
        for node in self.nodes.values():
            node.stop()
        self.superlink.stop()
        self.catalog.close()

    def logs(self) -> str:
        parts = [f"--- superlink ---\n{self.superlink.log()[-4000:]}"]
        parts += [f"--- {n} ---\n{p.log()[-3000:]}" for n, p in self.nodes.items()]
        return "\n".join(parts)


@pytest.fixture
def world(tmp_path: Path, fl_model: Path) -> Iterator[World]:
    world = World(tmp_path, fl_model)
    try:
        yield world
    finally:
        world.stop()


def test_fl_fleet_run_adapts_shifted_gateway_survives_restart_and_power_loss(
    world: World, fl_model: Path
) -> None:
    """Two rounds, four gateways: one with a shifted sensor, one restarted
    after round 1 (it rejoins round 2), one whose dock loses mains (it leaves;
    the run goes on)."""
    root = world.root / "gateways"
    normal_a = make_gateway(root, "gw-a", range(910000, 910012), range(910100, 910106))
    normal_b = make_gateway(root, "gw-b", range(920000, 920012), range(920100, 920106))
    # Sensor turned over and its accelerometer reading 0.3x (a full-scale
    # setting the firmware gets wrong): the shipped model misses crashes.
    # This gateway rides most, so it weighs most in the weighted average.
    shifted = make_gateway(
        root,
        "gw-c",
        range(930000, 930030),
        range(930100, 930106),
        shift=Shift.flipped_mount(accel_gain=0.3),
    )
    unplugged = make_gateway(root, "gw-d", range(940000, 940008), [])
    info = load_model_info(fl_model)
    runner = CrashModelRunner.from_info(info)
    threshold = info.metadata.threshold
    shipped = load_head(metadata_path_for(fl_model))

    # The shipped model on the shifted sensor, against an ordinary gateway.
    before_a = event_figures_for(normal_a, runner, shipped, threshold)
    before_c = event_figures_for(shifted, runner, shipped, threshold)
    _say(_figures("gw-a shipped model", before_a))
    _say(_figures("gw-c (shifted) shipped model", before_c))
    assert (before_c.recall, -before_c.false_alarms) < (
        before_a.recall,
        -before_a.false_alarms,
    ), "the sensor shift must degrade the shipped model for this test to mean much"

    for gateway in (normal_a, normal_b, shifted, unplugged):
        world.add_node(gateway)

    def after_round_one(run_key: str) -> None:
        world.nodes["gw-a"].stop()
        unplugged.set_external_power(False)
        world.add_node(normal_a, "gw-a-restarted")

    try:
        key = world.run(
            RunRequest(rounds=2, min_nodes=3, overrides={"epochs": 600}),
            during=after_round_one,
        )
    except AssertionError:
        _say(world.logs())
        raise
    run = world.catalog.get_fl_run(key)
    rounds = world.catalog.list_fl_rounds(key)
    for record in rounds:
        _say(
            f"round {record.round}: {record.status}, {record.participants} of "
            f"{record.sampled} sampled, train loss {record.train_loss}, eval loss "
            f"{record.eval_loss}, eval recall {record.eval_recall}"
        )
    assert run is not None and run.state == RunState.FINISHED, (run, world.logs())
    assert [r.status for r in rounds] == [RoundStatus.AGGREGATED] * 2
    assert rounds[0].participants == 4
    # Round 2: the restarted gateway took part; the unplugged one did not.
    assert rounds[1].participants == 3
    assert "Receiving: train message" in world.nodes["gw-a-restarted"].log()
    assert "gateway on battery" in world.nodes["gw-d"].log()
    assert all(r.eval_loss is not None and r.train_loss is not None for r in rounds)

    head = _head_of(run.result)
    head_file = json.loads(Path(str(run.result["head_file"])).read_text())
    assert head_file["head"] == head.to_dict() and head_file["run_key"] == key
    after_a = event_figures_for(normal_a, runner, head, threshold)
    after_c = event_figures_for(shifted, runner, head, threshold)
    _say(_figures("gw-a after the run", after_a))
    _say(_figures("gw-c (shifted) after the run", after_c))
    assert (after_c.recall, -after_c.false_alarms) > (
        before_c.recall,
        -before_c.false_alarms,
    )
    assert after_c.recall >= before_c.recall
    assert after_a.recall >= before_a.recall

    # Publication: the coordinator rebuilds the TFLite model from the head,
    # gates it on validation rides and signs it into the TUF repository; each
    # gateway's model manager verifies, shadow-tests and swaps to it.
    _, validation_seeds = split_seeds(777, 1, 6)
    repo = make_world(world.root / "repo", ValidationSet.synthesise(validation_seeds))
    outcome = repo.publisher.publish_from_head(head.kernel, head.bias, run_id=key)
    assert outcome.published, outcome.gate.reasons
    _say(f"published {outcome.version} from run {key}")
    managers = {g.name: repo.gateway(g.name) for g in (normal_a, normal_b, shifted)}
    for name, manager in managers.items():
        update = manager.check()
        _say(f"{name}: {update.result} -> {manager.active_version}")
        assert update.result is UpdateResult.INSTALLED, update.reason
        assert manager.active_version == outcome.version
    # The shifted gateway's crashes with the model it now runs (LiteRT).
    active = CrashModelRunner.from_info(managers["gw-c"].active_info())
    scores = [
        evaluation.RideScores(
            active.predict(shifted.heldout_windows(ride)).probability,
            ride.starts_s,
            ride.impact_s,
            ride.riding_s,
        )
        for ride in shifted.heldout
    ]
    published = evaluation.event_figures(scores, DecisionRule(threshold, 1))
    _say(_figures("gw-c (shifted) with the published model", published))
    assert (published.recall, -published.false_alarms) > (
        before_c.recall,
        -before_c.false_alarms,
    )


def test_fl_garbage_gateway_degrades_fedavg_not_robust_aggregation(
    world: World, fl_model: Path
) -> None:
    """One gateway's labels are garbage (crashes marked normal, riding marked
    crash) and it claims three times the data: compare the aggregated heads,
    before any publication gate, on the honest gateways' held-out rides."""
    root = world.root / "gateways"
    honest = [
        make_gateway(root, "gw-h1", range(960000, 960012), range(960100, 960106)),
        make_gateway(root, "gw-h2", range(970000, 970012), range(970100, 970106)),
    ]
    garbage = make_gateway(
        root, "gw-g", range(980000, 980012), [], flip_labels=True, copies=3
    )
    for gateway in (*honest, garbage):
        world.add_node(gateway)
    info = load_model_info(fl_model)
    runner = CrashModelRunner.from_info(info)
    threshold = info.metadata.threshold

    def figures(head: ModelHead) -> tuple[float, int]:
        results = [event_figures_for(g, runner, head, threshold) for g in honest]
        detected = sum(r.detected for r in results)
        crashes = sum(r.crashes for r in results)
        return detected / crashes, sum(r.false_alarms for r in results)

    shipped = figures(load_head(metadata_path_for(fl_model)))
    heads = {}
    try:
        for strategy, extra in (("fedavg", {}), ("trimmed-mean", {"trim-beta": 0.34})):
            key = world.run(
                RunRequest(rounds=1, min_nodes=3, strategy=strategy, overrides=extra)
            )
            run = world.catalog.get_fl_run(key)
            assert run is not None and run.state == RunState.FINISHED, run
            heads[strategy] = _head_of(run.result)
    except AssertionError:
        _say(world.logs())
        raise
    fedavg = figures(heads["fedavg"])
    robust = figures(heads["trimmed-mean"])
    for label, (recall, alarms) in (
        ("shipped head", shipped),
        ("FedAvg with the garbage gateway", fedavg),
        ("trimmed mean with the garbage gateway", robust),
    ):
        _say(f"{label}: recall {recall:.2f}, {alarms} false alarms (honest gateways)")
    assert (fedavg[0], -fedavg[1]) < (shipped[0], -shipped[1])
    assert robust[0] >= shipped[0] and robust[1] <= shipped[1]
