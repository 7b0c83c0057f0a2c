"""Benchmark an analytics job on the 50 MB reference log, server side.

How to run (from the repository root, dev install)::

    .venv/bin/python benchmarks/bench_jobs.py                  # local store
    .venv/bin/python benchmarks/bench_jobs.py --store seaweed  # SeaweedFS S3

The reference log (``firmware_bridge.synth.reference_spec("50MB")``, kept
at ``ride_log_path`` in ``--cache``, default ``~/.cache/suitlink/bench``;
synthesised once if absent) is put in the archive bucket, then
``--repeat`` analytics jobs run through :class:`cloud_coordinator.jobs.
JobRunner` exactly as ``POST /api/v1/jobs`` starts them, on a SQLite
catalog. For each job it prints the server-side seconds the job records:
download from the store, the gateway pipeline (decode ... CSV), upload of
the raw CSV and analytics JSON, cataloguing and notification, and the
total; then the median total against the 5 s target. The first job also
loads the crash model (once per worker thread); it is reported apart.

Baseline: the gateway pipeline alone (``process_log``, no store, no
catalog) on the same log in this process, so the job's overhead shows.
Each line also gives the CPU seconds the process spent on the job (all
threads): on a shared or loaded host the wall time grows with the load,
the CPU time much less, so both are printed, with the load average.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from cloud_coordinator.catalog import JobState, SqliteCatalog  # noqa: E402
from cloud_coordinator.jobs import AnalyticsSource, JobRequest, JobRunner  # noqa: E402
from edge_agent.custody.durable import sha256_file  # noqa: E402
from edge_agent.processing import CrashDetector, process_log  # noqa: E402
from edge_agent.upload import (  # noqa: E402
    BucketNames,
    LocalDirStore,
    ObjectMetadata,
    ObjectRef,
    ObjectStore,
    S3Store,
    Uploader,
    UploadJournal,
)
from firmware_bridge.synth import reference_spec, write_ride  # noqa: E402
from firmware_bridge.synth.api import ride_log_path  # noqa: E402

TARGET_TOTAL_S = 5.0
DEFAULT_CACHE = Path.home() / ".cache" / "suitlink" / "bench"
RIDER, SUIT = "bench-rider", "SUIT-REF-50MB"
STEPS = ("download", "process", "upload", "catalogue", "total")


def reference_log(cache: Path) -> Path:
    """Return the 50 MB reference log, synthesising it once."""
    spec = reference_spec("50MB")
    path = ride_log_path(spec, cache)
    if not path.exists():
        cache.mkdir(parents=True, exist_ok=True)
        print(f"synthesising the 50 MB reference log into {path} (once) ...")
        write_ride(spec, path)
    return path


@contextlib.contextmanager
def open_store(kind: str, work: Path) -> Iterator[ObjectStore]:
    """Yield the store to benchmark on (a SeaweedFS is started and stopped)."""
    if kind == "local":
        yield LocalDirStore(work / "store")
        return
    from tests.support.seaweed import run_seaweed

    with run_seaweed(work / "seaweed") as server:
        yield S3Store.connect(
            server.endpoint_url,
            access_key_id=server.access_key_id,
            secret_access_key=server.secret_access_key,
            region=server.region,
        )


def main() -> int:
    """Run the benchmark and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--store", choices=("local", "seaweed"), default="local")
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    log = reference_log(args.cache)
    size_mb = log.stat().st_size / 1e6
    buckets = BucketNames()
    with tempfile.TemporaryDirectory(prefix="bench-jobs-") as folder:
        work = Path(folder)

        detector = CrashDetector.shipped()
        started, cpu_before = time.perf_counter(), time.process_time()
        process_log(log, RIDER, SUIT, work / "baseline", detector)
        baseline_s = time.perf_counter() - started
        baseline_cpu_s = time.process_time() - cpu_before

        with open_store(args.store, work) as store:
            for bucket in (buckets.raw, buckets.analytics, buckets.crash):
                store.ensure_bucket(bucket)
            store.ensure_bucket(buckets.archive)
            key = f"{RIDER}/{SUIT}/bench/{log.name}"
            Uploader(store, UploadJournal(work / "journal.db")).upload_file(
                ObjectRef(buckets.archive, key),
                log,
                ObjectMetadata(sha256_file(log), log.stem, SUIT, RIDER, "archive"),
            )
            catalog = SqliteCatalog(work / "catalog.db")
            catalog.migrate()
            runner = JobRunner(catalog, store, buckets, scratch_dir=work / "jobs")
            totals: list[float] = []
            cpus: list[float] = []
            try:
                for run in range(1, args.repeat + 2):
                    cpu_before = time.process_time()
                    job = runner.submit(
                        JobRequest(
                            AnalyticsSource(buckets.archive, key, RIDER, SUIT),
                            "bench",
                        )
                    )
                    runner.wait(job.job_id)
                    cpu_s = time.process_time() - cpu_before
                    done = catalog.get_job(job.job_id)
                    assert done is not None
                    if done.state is not JobState.SUCCEEDED or done.result is None:
                        print(f"job failed: {done.error}")
                        return 1
                    seconds = done.result["seconds"]
                    label = (
                        "warm-up (loads the model)" if run == 1 else f"job {run - 1}"
                    )
                    print(
                        f"{label:<26} "
                        + "  ".join(f"{step} {seconds[step]:6.2f} s" for step in STEPS)
                        + f"  cpu {cpu_s:6.2f} s"
                    )
                    if run > 1:
                        totals.append(float(seconds["total"]))
                        cpus.append(cpu_s)
            finally:
                runner.close()
                catalog.close()

    median = statistics.median(totals)
    print()
    print(f"log: {log} ({size_mb:.1f} MB), store: {args.store}, catalog: SQLite")
    print(
        f"baseline, gateway pipeline alone (process_log): {baseline_s:6.2f} s "
        f"(cpu {baseline_cpu_s:.2f} s)"
    )
    print(
        f"analytics job, server side, median of {len(totals)}:    {median:6.2f} s "
        f"(cpu {statistics.median(cpus):.2f} s; target <= {TARGET_TOTAL_S:.0f} s: "
        f"{'met' if median <= TARGET_TOTAL_S else 'MISSED'})"
    )
    print(f"load average at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
