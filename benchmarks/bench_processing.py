"""Benchmark the processing pipeline: suit log -> CSV + analytics + crash verdict.

How to run (from the repository root, dev install)::

    .venv/bin/python benchmarks/bench_processing.py              # 50 MB log
    .venv/bin/python benchmarks/bench_processing.py --size 250MB # peak RSS
    make bench-processing          # the same as the first line
    make bench-processing-250      # the same as the second line

Options: ``--cache DIR`` keeps the reference logs (default
``~/.cache/suitlink/bench``; a missing log is synthesised once with
``firmware_bridge.synth.reference_spec``, the fixed-seed DESIGN.md reference),
``--model PATH`` a ``.tflite`` with its ``.json`` (default: the shipped model;
without one, an untrained export of ``models.network``, built once into the
cache in a subprocess, which costs the same to run), ``--repeat N`` runs.

50 MB mode runs, in this process and on the same log, our pipeline and a
baseline that differs only in the CSV writer: the same stages feed a
``pandas.DataFrame`` written with ``DataFrame.to_csv(float_format="%.4f",
compression={"method": "gzip", "compresslevel": 1})``. It prints each
stage's wall time for both, the totals (wall and CPU), the speed ratio and the
targets (<= 4 s, >= 5x pandas). Stage times are time spent by the
orchestrating thread; our CSV formatting and compression run in worker
threads in parallel with the other stages, so our "csv" row is only the time
the pipeline waited for them.

250 MB mode runs the pipeline alone in a child process and reads the child's
peak resident set size (``ru_maxrss``); target <= 300 MB.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from edge_agent.processing import CrashDetector, ProcessOptions, process_log
from edge_agent.processing.csv_out import Column

TARGET_WALL_S = 4.0
TARGET_RATIO = 5.0
TARGET_RSS_MB = 300.0
STAGES = ("decode", "clean", "resample", "orientation", "model", "analytics", "csv")
DEFAULT_CACHE = Path.home() / ".cache" / "suitlink" / "bench"
PANDAS_FLOAT_FORMAT = "%.4f"


class PandasSink:
    """Baseline CSV sink: collect the rows, write them with DataFrame.to_csv."""

    def __init__(self, path: Path, columns: list[Column]) -> None:
        self.path = path
        self.columns = columns
        self.rows = 0
        self.size_bytes = 0
        self.thread_cpu_s = 0.0
        self._parts: list[dict[str, npt.NDArray[np.generic]]] = []

    def write(self, values: dict[str, npt.NDArray[np.generic]]) -> None:
        """Keep a copy of one chunk."""
        self._parts.append({k: np.array(v) for k, v in values.items()})
        self.rows += len(values[self.columns[0].name])

    def close(self) -> None:
        """Build the frame and write it as gzip level 1 CSV."""
        import pandas as pd

        data: dict[str, Any] = {}
        for column in self.columns:
            joined = np.concatenate([part[column.name] for part in self._parts])
            if column.kind == "scaled":
                data[column.name] = joined / 10.0**column.decimals
            elif column.kind == "timestamp_us":
                data[column.name] = pd.to_datetime(joined, unit="us")
            else:
                data[column.name] = joined
        frame = pd.DataFrame(data)
        frame.to_csv(
            self.path,
            index=False,
            float_format=PANDAS_FLOAT_FORMAT,
            compression={"method": "gzip", "compresslevel": 1},
        )
        self.size_bytes = self.path.stat().st_size
        self._parts.clear()

    def abort(self) -> None:
        """Drop the collected rows."""
        self._parts.clear()


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def reference_log(size: str, cache: Path) -> Path:
    """Return the cached reference log of ``size``, synthesising it if absent."""
    from firmware_bridge.synth import reference_spec, write_ride

    path = cache / f"reference-{size}.slog"
    if not path.exists():
        cache.mkdir(parents=True, exist_ok=True)
        print(f"synthesising the {size} reference log into {path} (once) ...")
        started = time.perf_counter()
        write_ride(reference_spec(size), path)  # type: ignore[arg-type]
        print(f"  done in {time.perf_counter() - started:.0f} s")
    return path


def bench_model(requested: Path | None, cache: Path) -> Path:
    """Return the model to run: asked for, shipped, or an untrained export."""
    if requested is not None:
        return requested
    try:
        from models.registry import shipped_model

        return shipped_model().path
    except Exception as exc:
        print(f"no shipped model ({type(exc).__name__}); using an untrained export")
    path = cache / "untrained-crash-model.tflite"
    if not path.exists():
        cache.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [sys.executable, __file__, "--build-model", str(path)], check=True
        )
    return path


def build_untrained_model(path: Path) -> None:
    """Export ``models.network`` untrained (TensorFlow; run in a child)."""
    from models import contract
    from models.export import convert_to_tflite
    from models.metadata import (
        SIGNATURE_KEY,
        DecisionRule,
        InputSpec,
        ModelMetadata,
        save_metadata,
    )
    from models.network import EMBEDDING_SIZE, build_network
    from models.registry import file_sha256, metadata_path_for

    flatbuffer = convert_to_tflite(build_network())
    path.write_bytes(flatbuffer)
    metadata = ModelMetadata(
        name="crash-detector-bench",
        version="untrained",
        contract_version=contract.CONTRACT_VERSION,
        sha256=file_sha256(path),
        size_bytes=len(flatbuffer),
        signature_key=SIGNATURE_KEY,
        input=InputSpec.contract_v1(),
        outputs={
            contract.OUTPUT_PROBABILITY: [-1, 1],
            contract.OUTPUT_EMBEDDING: [-1, EMBEDDING_SIZE],
        },
        # Untrained outputs mean nothing; a threshold it cannot reach keeps
        # the verdict "no crash" while the model still runs on every window.
        decision=DecisionRule(threshold=1.01, min_run_windows=2),
        created_utc=datetime.now(UTC).isoformat(timespec="seconds"),
    )
    save_metadata(metadata, metadata_path_for(path))


def run_once(
    log: Path, model: CrashDetector, out: Path, baseline: bool
) -> dict[str, Any]:
    """Process ``log`` once; return wall, CPU, stage times and sizes."""
    options = ProcessOptions(fsync=False, csv_sink=PandasSink if baseline else None)
    cpu = _cpu_s()
    started = time.perf_counter()
    result = process_log(log, "bench-rider", "bench-suit", out, model, options=options)
    wall = time.perf_counter() - started
    return {
        "wall_s": wall,
        "cpu_s": _cpu_s() - cpu,
        "stages": result.stage_seconds,
        "csv_thread_cpu_s": result.csv_thread_cpu_s,
        "csv_bytes": result.csv_bytes,
        "samples": result.samples,
        "crash": result.analytics["crash"]["detected"],
    }


def _best(runs: list[dict[str, Any]]) -> dict[str, Any]:
    return min(runs, key=lambda r: r["wall_s"])


def bench_50mb(args: argparse.Namespace) -> int:
    """Run ours and the pandas baseline on the 50 MB log; print the table."""
    log = reference_log("50MB", args.cache)
    model = CrashDetector.load(bench_model(args.model, args.cache))
    size_mb = log.stat().st_size / 1e6
    print(f"log: {log} ({size_mb:.1f} MB), model: {model.info.path.name}")
    ours, pandas_runs = [], []
    with tempfile.TemporaryDirectory(prefix="bench-processing-") as tmp:
        for number in range(args.repeat):
            ours.append(run_once(log, model, Path(tmp) / f"ours{number}", False))
            print(
                f"  ours   run {number + 1}/{args.repeat}: {ours[-1]['wall_s']:.2f} s"
            )
        for number in range(max(1, args.repeat // 2)):
            pandas_runs.append(run_once(log, model, Path(tmp) / f"pd{number}", True))
            print(f"  pandas run {number + 1}: {pandas_runs[-1]['wall_s']:.2f} s")
    best, base = _best(ours), _best(pandas_runs)

    print(f"\n{'stage':<12}{'ours (s)':>10}{'pandas (s)':>12}")
    for stage in STAGES:
        ours_s = best["stages"].get(stage, 0.0)
        base_s = base["stages"].get(stage, 0.0)
        print(f"{stage:<12}{ours_s:>10.2f}{base_s:>12.2f}")
    print(
        f"{'csv threads':<12}{best['csv_thread_cpu_s']:>10.2f}{'-':>12}"
        "   (CPU s, in parallel)"
    )
    print(f"{'total wall':<12}{best['wall_s']:>10.2f}{base['wall_s']:>12.2f}")
    print(f"{'total CPU':<12}{best['cpu_s']:>10.2f}{base['cpu_s']:>12.2f}")
    print(
        f"{'CSV MB':<12}{best['csv_bytes'] / 1e6:>10.1f}"
        f"{base['csv_bytes'] / 1e6:>12.1f}"
    )
    ratio = base["wall_s"] / best["wall_s"]
    csv_ratio = base["stages"]["csv"] / max(best["stages"]["csv"], 1e-9)
    print(f"\nsamples {best['samples']:,}, crash detected: {best['crash']}")
    print(f"speed ratio (pandas / ours, total wall): {ratio:.1f}x")
    print(f"speed ratio of the CSV stage alone: {csv_ratio:.1f}x")
    wall_ok = best["wall_s"] <= TARGET_WALL_S
    ratio_ok = ratio >= TARGET_RATIO
    print(
        f"targets: wall <= {TARGET_WALL_S:.0f} s: {'met' if wall_ok else 'MISSED'}; "
        f">= {TARGET_RATIO:.0f}x pandas: {'met' if ratio_ok else 'MISSED'}"
    )
    print(f"(best of {args.repeat}; machine cores: {os.cpu_count()})")
    return 0


def bench_250mb(args: argparse.Namespace) -> int:
    """Run the pipeline on the 250 MB log in a child; print its peak RSS."""
    log = reference_log("250MB", args.cache)
    model_path = bench_model(args.model, args.cache)
    with tempfile.TemporaryDirectory(prefix="bench-processing-") as tmp:
        child = subprocess.run(
            [sys.executable, __file__, "--child", str(log), tmp, str(model_path)],
            check=True,
            capture_output=True,
            text=True,
        )
    report = json.loads(child.stdout.strip().splitlines()[-1])
    children_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"log: {log} ({log.stat().st_size / 1e6:.1f} MB)")
    print(f"wall {report['wall_s']:.1f} s, CPU {report['cpu_s']:.1f} s, "
          f"samples {report['samples']:,}")  # fmt: skip
    print(f"peak RSS of the child: {report['maxrss_mb']:.0f} MB "
          f"(largest child seen: {children_mb:.0f} MB)")  # fmt: skip
    ok = report["maxrss_mb"] <= TARGET_RSS_MB
    print(f"target <= {TARGET_RSS_MB:.0f} MB: {'met' if ok else 'MISSED'}")
    return 0


def child(log: Path, out: Path, model_path: Path) -> int:
    """Process one log and print a JSON line with time and peak RSS."""
    model = CrashDetector.load(model_path)
    report = run_once(log, model, out, baseline=False)
    report["maxrss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(report))
    return 0


def main(argv: list[str] | None = None) -> int:
    """Parse arguments and run the chosen benchmark."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=("50MB", "250MB"), default="50MB")
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    parser.add_argument("--model", type=Path, default=None)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--child", nargs=3, metavar=("LOG", "OUT", "MODEL"))
    parser.add_argument("--build-model", type=Path, metavar="PATH")
    args = parser.parse_args(argv)
    if args.build_model:
        build_untrained_model(args.build_model)
        return 0
    if args.child:
        return child(Path(args.child[0]), Path(args.child[1]), Path(args.child[2]))
    if args.size == "250MB":
        return bench_250mb(args)
    return bench_50mb(args)


if __name__ == "__main__":
    sys.exit(main())
