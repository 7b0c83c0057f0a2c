"""Benchmark of one model publication and one gateway update, on loopback.

How to run (from the repository root, dev install with TensorFlow)::

    .venv/bin/python benchmarks/bench_model_update.py
    .venv/bin/python benchmarks/bench_model_update.py --rides 48 --gateways 5

What it does:

1. Creates a TUF repository in a local-directory store under a temporary
   folder (fresh Ed25519 keys) and synthesises ``--rides`` validation rides.
2. ``ModelPublisher.publish_from_head`` with the shipped head: rebuild the
   TFLite model with TensorFlow, score candidate and current model on the
   validation rides on LiteRT, pick reference crashes, sign and write the
   release. Reports the wall time of the whole call.
3. ``--gateways`` gateways each run one ``ModelManager.check``: refresh and
   verify the metadata, download and verify three targets, shadow-test,
   swap. Reports the median and worst wall time per gateway and the bytes
   each one read from the store (metadata and targets).

Baseline printed beside the figures: the update must fit easily into the
gateway's hourly check (3600 s) and a rider's docking time (minutes); the
publication into a federated run's tail (minutes).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from cloud_coordinator.modelrepo import (
    KeyRing,
    ModelPublisher,
    TufRepository,
    generate_role_keys,
    load_or_synthesise,
)
from edge_agent.modelmgr import ModelManager, TufModelClient, UpdateResult
from edge_agent.upload import LocalDirStore
from models.head import load_head
from models.registry import shipped_path

BUCKET = "models"
BASELINE_GATEWAY_S = 60.0
BASELINE_PUBLISH_S = 300.0


class CountingStore(LocalDirStore):
    """A local store that counts the bytes read through ``get_object``."""

    bytes_read = 0

    def get_object(self, bucket: str, key: str) -> bytes:
        """Read and count."""
        data = super().get_object(bucket, key)
        self.bytes_read += len(data)
        return data


def main() -> int:
    """Run the benchmark; print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rides", type=int, default=24, help="validation rides")
    parser.add_argument("--gateways", type=int, default=3, help="gateways to update")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-model-update-") as tmp:
        root = Path(tmp)
        store = LocalDirStore(root / "store")
        generate_role_keys(root / "keys")
        repo = TufRepository(store, BUCKET, KeyRing(root / "keys"))
        repo.initialise()
        (root / "root.json").write_bytes(repo.root_bytes())
        started = time.perf_counter()
        validation = load_or_synthesise(None, rides=args.rides)
        synth_s = time.perf_counter() - started
        publisher = ModelPublisher(repo, lambda: validation)
        head = load_head(shipped_path(".json"))

        started = time.perf_counter()
        outcome = publisher.publish_from_head(head.kernel, head.bias)
        publish_s = time.perf_counter() - started
        assert outcome.published, outcome.gate.reasons

        times_s, bytes_read = [], []
        for index in range(args.gateways):
            counting = CountingStore(root / "store")
            folder = root / f"gw-{index}"
            client = TufModelClient(
                folder / "tuf",
                f"store://{BUCKET}",
                trusted_root=root / "root.json",
                store=counting,
            )
            manager = ModelManager(f"gw-{index}", folder / "models", client)
            started = time.perf_counter()
            result = manager.check()
            times_s.append(time.perf_counter() - started)
            bytes_read.append(counting.bytes_read)
            assert result.result is UpdateResult.INSTALLED, result

    print(f"validation rides        {args.rides} ({len(validation.windows)} windows)")
    print(f"  synthesised in        {synth_s:.1f} s")
    print(
        f"publish_from_head       {publish_s:.1f} s "
        f"(baseline: under {BASELINE_PUBLISH_S:.0f} s)"
    )
    print(
        f"gateway update          median {statistics.median(times_s):.2f} s, "
        f"worst {max(times_s):.2f} s over {args.gateways} gateways "
        f"(baseline: under {BASELINE_GATEWAY_S:.0f} s)"
    )
    print(
        f"bytes read per gateway  {statistics.median(bytes_read) / 1e3:.1f} kB "
        "(metadata and three targets)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
