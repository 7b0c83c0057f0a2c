"""Benchmark the crash model on LiteRT: windows per second, and its share of
processing the 50 MB reference log.

How to run (from the repository root, dev install)::

    .venv/bin/python benchmarks/bench_model.py
    .venv/bin/python benchmarks/bench_model.py --model a.tflite --model b.tflite

Without ``--model`` it measures the shipped model and, when present, its
other-precision sibling in ``models/shipped`` (``crash_v1_int8.tflite`` or
``crash_v1_float32.tflite``). Everything runs on one thread (LiteRT
``num_threads=1``; one core of the gateway).

1. Throughput: the windows of the reference log (about 4,300, real model
   input from the pipeline's resampling), scored ``--repeat`` times in
   batches of 256; the best run is reported as windows per second.
2. Detection cost: the time to score the log's windows (from 1.), and
   ``process_log`` on the 50 MB reference log with each
   model and without any (``model=None``), best of ``--repeat``; the added
   wall time is the detector's cost in processing (on a shared, loaded
   machine this difference is noisier than the first figure).

Targets (issue 4): at least 10,000 windows/s per model on one core, and the
detector adds at most 0.5 s to processing the 50 MB log. The figures are
printed next to the targets; nothing here is a pass/fail test.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from bench_processing import DEFAULT_CACHE, reference_log  # benchmarks/ is on sys.path

from edge_agent.processing import CrashDetector, ProcessOptions, process_log
from firmware_bridge.logformat import raw_to_physical, read_log
from models import contract
from models.dataset import imu_to_model_input
from models.registry import load_model_info, shipped_model, shipped_path
from models.runtime import CrashModelRunner

TARGET_WINDOWS_PER_S = 10_000.0
TARGET_ADDED_S = 0.5
BATCH_WINDOWS = 256


def _models(requested: list[Path] | None) -> list[Path]:
    if requested:
        return requested
    paths = [shipped_model().path]
    for suffix in ("_int8.tflite", "_float32.tflite"):
        sibling = shipped_path(suffix)
        if sibling.exists():
            paths.append(sibling)
    return paths


def _log_windows(log: Path) -> np.ndarray:
    """Return the contract windows of a suit log (decoded, resampled)."""
    decoded = read_log(log)
    t_us = decoded.imu["t_us"].astype(np.int64)
    t_s = np.concatenate([[0.0], np.cumsum(np.diff(t_us) % (1 << 32))]) / 1e6
    accel = raw_to_physical(decoded.imu["acc"], decoded.header.accel_full_scale_g)
    gyro = raw_to_physical(decoded.imu["gyr"], decoded.header.gyro_full_scale_dps)
    _, model_input = imu_to_model_input(t_s, accel, gyro, decoded.header.sample_rate_hz)
    return np.ascontiguousarray(contract.make_windows(model_input))


def _throughput(path: Path, windows: np.ndarray, repeat: int) -> float:
    runner = CrashModelRunner(path, batch_windows=BATCH_WINDOWS, num_threads=1)
    runner.predict(windows[:BATCH_WINDOWS])  # warm-up
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        runner.predict(windows)
        best = min(best, time.perf_counter() - started)
    return len(windows) / best


def _process_s(log: Path, detector: CrashDetector | None, repeat: int) -> float:
    best = float("inf")
    for i in range(repeat):
        with tempfile.TemporaryDirectory(prefix="bench-model-") as out:
            started = time.perf_counter()
            process_log(
                log,
                "bench-rider",
                "bench-suit",
                Path(out) / str(i),
                detector,
                options=ProcessOptions(fsync=False),
            )
            best = min(best, time.perf_counter() - started)
    return best


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; print figures next to the targets."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, action="append", default=None)
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)

    log = reference_log("50MB", args.cache)
    windows = _log_windows(log)
    print(f"reference log {log}: {len(windows)} windows")
    models = _models(args.model)

    print(
        f"throughput, one thread, batches of {BATCH_WINDOWS} (target >= "
        f"{TARGET_WINDOWS_PER_S:,.0f} windows/s):"
    )
    for path in models:
        info = load_model_info(path)
        rate = _throughput(path, windows, args.repeat)
        print(
            f"  {path.name} ({info.metadata.precision}, {info.metadata.size_bytes} "
            f"bytes): {rate:,.0f} windows/s; scoring the log's windows takes "
            f"{len(windows) / rate:.2f} s (target <= {TARGET_ADDED_S} s)"
        )

    baseline = _process_s(log, None, args.repeat)
    print(
        f"processing the 50 MB log without a model: {baseline:.2f} s (best of "
        f"{args.repeat})"
    )
    for path in models:
        detector = CrashDetector(load_model_info(path), num_threads=1)
        with_model = _process_s(log, detector, args.repeat)
        print(
            f"  with {path.name}: {with_model:.2f} s, detection adds "
            f"{with_model - baseline:+.2f} s (target <= {TARGET_ADDED_S} s)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
