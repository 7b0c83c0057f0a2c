"""Benchmark: one federated round with 10 SuperNodes on this machine.

How to run (from the repository root, dev install; loopback only)::

    .venv/bin/python benchmarks/bench_fl.py
    .venv/bin/python benchmarks/bench_fl.py --nodes 4 --rides 8

What it does, every step bounded in time:

1. synthesises ``--rides`` rides per gateway into each gateway's labelled
   window store (``tests/fl/fl_helpers.py``), and copies the shipped model;
2. starts a SuperLink (``--insecure``, 127.0.0.1, ephemeral port) and
   ``--nodes`` SuperNodes, each the SuperNode of one emulated gateway;
3. starts one run of one round (quorum = every node) through the Control
   API, as ``cloud-coordinator fl start`` does, and waits for its end;
4. prints the wall time from submission to the recorded end, the round's
   own duration (eligibility, training, evaluation), and the bytes the
   SuperLink counted for the run (Flower's own ``bytes_sent`` /
   ``bytes_recv`` of the run, every message of every node: the app bundle,
   the eligibility question, training and evaluation), per gateway.

Baseline printed beside the figures: the bytes of the labelled windows a
gateway would upload if training ran in the cloud instead (4800 bytes per
window, the gateway's store size), and the model head itself (33 float32).
All processes run on this host, so the wall time includes ten SuperNodes
and their ClientApp processes competing for its cores: an upper bound on a
round's coordination cost, not a gateway's training time (which each
gateway reports as ``cpu-s``, shown as the mean).
"""

from __future__ import annotations

import argparse
import shutil
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "fl"))

from fl_helpers import (  # noqa: E402
    make_gateway,
    prepare_model,
    start_superlink,
    start_supernode,
    wait_for,
)

from cloud_coordinator.catalog import SqliteCatalog  # noqa: E402
from cloud_coordinator.catalog.fl_records import RunState  # noqa: E402
from cloud_coordinator.fl.control import ControlClient  # noqa: E402
from cloud_coordinator.fl.runs import RunRequest, start_run  # noqa: E402
from edge_agent.fl.store import WindowStore  # noqa: E402
from models.registry import metadata_path_for  # noqa: E402

# Bound on the whole round on a loaded two-core host.
RUN_TIMEOUT_S = 900.0
WINDOW_BYTES = 200 * 6 * 4
HEAD_BYTES = (32 + 1) * 4


def main() -> int:
    """Run the benchmark; return the exit code."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--nodes", type=int, default=10)
    parser.add_argument("--rides", type=int, default=6, help="rides per gateway")
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-fl-"))
    processes = []
    try:
        started = time.monotonic()
        model = prepare_model(work / "model")
        gateways = [
            make_gateway(
                work / "gateways",
                f"gw-{i:02d}",
                range(1_200_000 + 1000 * i, 1_200_000 + 1000 * i + args.rides),
                [],
            )
            for i in range(args.nodes)
        ]
        windows = []
        for gateway in gateways:
            with WindowStore(gateway.store_path) as store:
                windows.append(store.counts().labelled)
        print(
            f"data: {args.nodes} gateways, {sum(windows)} labelled windows "
            f"({time.monotonic() - started:.1f} s)"
        )

        superlink, address = start_superlink(work / "superlink")
        processes.append(superlink)
        for gateway in gateways:
            processes.append(
                start_supernode(
                    work / "nodes", gateway.name, address, gateway.node_config(model)
                )
            )
        catalog_path = work / "catalog.db"
        catalog = SqliteCatalog(catalog_path)
        catalog.migrate()
        submitted = time.monotonic()
        with ControlClient(address, insecure=True) as control:
            run = start_run(
                catalog,
                control,
                RunRequest(rounds=1, min_nodes=args.nodes),
                requested_by="bench",
                base_config={
                    "catalog": f"sqlite:{catalog_path}",
                    "initial-model": str(metadata_path_for(model)),
                    "query-timeout-s": 120.0,
                    "round-timeout-s": 600.0,
                    "quorum-wait-s": 600.0,
                },
            )

        def ended() -> bool:
            current = catalog.get_fl_run(run.run_key)
            return current is not None and current.state.finished

        wait_for(ended, RUN_TIMEOUT_S, "the benchmark run", 0.5)
        wall_s = time.monotonic() - submitted
        final = catalog.get_fl_run(run.run_key)
        rounds = catalog.list_fl_rounds(run.run_key)
        catalog.close()
        assert final is not None
        if final.state != RunState.FINISHED or not rounds:
            print(f"run ended {final.state}: {final.detail}")
            return 1
        record = rounds[0]
        # The SuperLink stores the unsigned 64-bit run id as a signed one.
        run_id = int(final.flower_run_id or 0)
        stored_id = run_id - 2**64 if run_id >= 2**63 else run_id
        with sqlite3.connect(work / "superlink" / "superlink.db") as db:
            row = db.execute(
                "SELECT bytes_sent, bytes_recv FROM run WHERE run_id = ?",
                (stored_id,),
            ).fetchone()
        sent, received = (int(row[0]), int(row[1])) if row else (0, 0)
        train = record.metrics.get("train", {})
        print(
            f"round with {record.participants} of {args.nodes} SuperNodes: "
            f"{record.status}"
        )
        print(f"wall time, submission to recorded end: {wall_s:.1f} s")
        print(
            f"round duration (eligibility + training + evaluation): "
            f"{record.duration_s:.1f} s"
        )
        print(f"gateway training CPU, mean: {float(train.get('cpu-s', 0.0)):.3f} s")
        print(
            f"bytes per gateway per round: {received / args.nodes:,.0f} sent "
            f"(gateway -> SuperLink), {sent / args.nodes:,.0f} received"
        )
        print(
            f"baseline: labelled windows per gateway {sum(windows) / args.nodes:,.0f}"
            f" x {WINDOW_BYTES} B = "
            f"{sum(windows) / args.nodes * WINDOW_BYTES:,.0f} B if uploaded "
            f"for central training; the head itself is {HEAD_BYTES} B"
        )
        return 0
    finally:
        for process in processes:
            process.stop()
        if args.keep:
            print(f"work folder kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
