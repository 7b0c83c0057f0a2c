"""Benchmark what keeping federated-training windows adds to processing a log.

How to run (from the repository root, dev install)::

    .venv/bin/python benchmarks/bench_fl_windows.py [--repeat 3]

Processes the 50 MB reference log (``firmware_bridge.synth.reference_spec``,
synthesised once into ``--cache``, default ``~/.cache/suitlink/bench``) with
the shipped model, alternately without (the baseline) and with
``ProcessOptions(training_windows=True)``, then stores the kept windows with
``WindowStore.add_log`` as the agent does. Prints the best wall time of each,
the windows kept and the store's time and size. Figures depend on the host
load; compare the two lines of one run, not runs on different days.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from edge_agent.fl.store import STORE_FILE_NAME, WindowStore
from edge_agent.processing import (
    CrashDetector,
    ProcessOptions,
    ProcessResult,
    process_log,
)

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_processing import DEFAULT_CACHE, reference_log


def _run(
    log: Path, detector: CrashDetector, keep: bool, out: Path
) -> tuple[float, ProcessResult]:
    options = ProcessOptions(fsync=False, training_windows=keep)
    started = time.perf_counter()
    result = process_log(
        log, "rider-bench", "SUIT-BENCH", out, detector, options=options
    )
    return time.perf_counter() - started, result


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    args = parser.parse_args(argv)
    log = reference_log("50MB", args.cache)
    detector = CrashDetector.shipped()
    best = {False: float("inf"), True: float("inf")}
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(scratch)
        result = None
        for _ in range(args.repeat):
            for keep in (False, True):
                wall_s, run = _run(log, detector, keep, out)
                best[keep] = min(best[keep], wall_s)
                if keep:
                    result = run
        assert result is not None and result.training is not None
        training = result.training
        store_path = out / STORE_FILE_NAME
        started = time.perf_counter()
        with WindowStore(store_path) as store:
            counts = store.add_log(
                log_id=result.log_id,
                rider_id="rider-bench",
                windows=training.windows,
                starts_s=training.starts_s,
                airbag_offsets_s=training.airbag_offsets_s,
                detected_offsets_s=[e.t_offset_s for e in result.crash.events],
                negative_every=1,
            )
        store_s = time.perf_counter() - started
        store_bytes = sum(p.stat().st_size for p in out.glob(STORE_FILE_NAME + "*"))

    print(f"log {log.name}: {result.samples} samples, best of {args.repeat}")
    print(f"  baseline (no training windows)  {best[False]:7.2f} s")
    print(
        f"  with training windows           {best[True]:7.2f} s "
        f"({(best[True] / best[False] - 1) * 100:+.1f} %)"
    )
    print(
        f"  windows kept {training.count} ({training.windows.nbytes / 1e6:.1f} MB in "
        f"memory), stored {counts.positives} crash / {counts.negatives} normal / "
        f"{counts.pending} pending in {store_s:.2f} s, {store_bytes / 1e6:.1f} MB"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
