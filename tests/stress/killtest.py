"""Kill test: SIGKILL the agent at random moments, restart it, check custody.

Bounded in count and time. The agent (with an emulated suit in the same
process, see ``kill_worker``) uploads to a throw-away SeaweedFS on loopback.
While the kills go on, the rider docks new rides (new logs appear on the
suit), so kills keep landing in pulls, processing, uploads and releases.
Afterwards the agent runs to completion and the checks are:

* every log the suit erased is in the store: raw CSV and analytics, each
  object's bytes matching the SHA-256 in its metadata, the analytics naming
  the log and the sample count the synthesiser wrote, and the gateway's
  recorded SHA-256 of the log equal to the suit's file;
* no log is lost: the suit erased every log it was given;
* none is stored twice: one raw object and one analytics object per log;
* no multipart upload is left open in any bucket.

Usage::

    .venv/bin/python -m tests.stress.killtest [--kills 100] [--max-s 1500]
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from edge_agent.config import load_config
from edge_agent.custody import CustodyBuffer, LogState
from firmware_bridge.synth import RideSpec, ride_log_path, write_ride
from tests.support.seaweed import SeaweedS3, run_seaweed

from .kill_worker import SERIAL

# A worker that has not said READY by then is stuck: a failure, not a kill.
READY_TIMEOUT_S = 60.0
# The final, uninterrupted run must finish all remaining work within this.
FINAL_RUN_TIMEOUT_S = 600.0
# Kill this long after READY: a pull of one 5-7 MB log takes a few seconds,
# so kills spread over pulls, processing, uploads (two 5 MiB parts) and
# releases.
KILL_DELAY_RANGE_S = (0.0, 6.0)
BUCKETS = ("raw", "analytics", "crash")


def _ride(seed: int) -> RideSpec:
    return RideSpec(
        seed=seed,
        scenario=("city", "highway", "track")[seed % 3],
        riding_s=240.0,
        sample_rate_hz=1000.0,
        crash="lowside" if seed % 4 == 0 else None,
        walk_before_s=10.0,
        walk_after_s=10.0 if seed % 4 else 0.0,
        suit_serial=SERIAL,
    )


def _dock_new_rides(suit_dir: Path, seeds: list[int]) -> list[Path]:
    paths = []
    for seed in seeds:
        spec = _ride(seed)
        final = ride_log_path(spec, suit_dir)
        partial = suit_dir / (final.name + ".writing")
        write_ride(spec, partial)
        os.replace(partial, final)  # the suit never serves a half-written log
        Path(str(partial) + ".truth.json").replace(Path(str(final) + ".truth.json"))
        paths.append(final)
    return paths


def _write_config(path: Path, workdir: Path, s3: SeaweedS3) -> None:
    path.write_text(
        f"""
[gateway]
id = "gw-killtest"
workdir = "{workdir}"
[store]
kind = "s3"
endpoint_url = "{s3.endpoint_url}"
region = "{s3.region}"
access_key_id = "{s3.access_key_id}"
secret_access_key = "{s3.secret_access_key}"
multipart_threshold_bytes = 5242880
part_size_bytes = 5242880
[ble]
backend = "emulated"
scan_timeout_s = 0.3
[suits.{SERIAL}]
rider_id = "r-killtest"
"""
    )


def _start_worker(
    suit_dir: Path, ledger: Path, config: Path, log: Path
) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.stress.kill_worker",
            str(suit_dir),
            str(ledger),
            str(config),
        ],
        stdout=subprocess.PIPE,
        stderr=open(log, "a"),
        cwd=Path(__file__).resolve().parents[2],
    )


def _wait_for(process: subprocess.Popen[bytes], word: str, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    assert process.stdout is not None
    fd = process.stdout.fileno()
    os.set_blocking(fd, False)
    seen = b""
    while time.monotonic() < deadline:
        with contextlib.suppress(BlockingIOError):
            seen += os.read(fd, 4096)
        if word.encode() in seen:
            return True
        if process.poll() is not None:
            return False
        time.sleep(0.02)
    return False


def _phase_at_kill(log: Path, since: int, phase_file: Path) -> str:
    """Return what the agent was doing when killed (its last step)."""
    with open(log) as stream:
        stream.seek(since)
        lines = stream.read().splitlines()
    phase = phase_file.read_text().strip() if phase_file.exists() else ""
    phase_file.unlink(missing_ok=True)
    if lines and ("released" in lines[-1] or "purged" in lines[-1]):
        return "release"
    return phase or "start-up"


def _check(s3: SeaweedS3, workdir: Path, suit_dir: Path, ledger: Path) -> list[str]:
    problems = []
    client = s3.client()
    logs = {p.stem: p for p in suit_dir.glob("*.slog")}
    erased = set(ledger.read_text().split())
    if erased != set(logs):
        problems.append(f"suit still holds {sorted(set(logs) - erased)}")
    with CustodyBuffer.open(workdir / "buffer", read_only=True) as buffer:
        records = {r.log_id: r for r in buffer.logs()}
    keys: dict[str, list[str]] = collections.defaultdict(list)
    for bucket in BUCKETS:
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            for item in page.get("Contents", []):
                keys[bucket].append(item["Key"])
        open_uploads = client.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
        if open_uploads:
            problems.append(f"{len(open_uploads)} multipart uploads left in {bucket}")
    for log_id, path in logs.items():
        record = records.get(log_id)
        if record is None or record.state is not LogState.PURGED:
            problems.append(f"log {log_id}: buffer state {record and record.state}")
            continue
        if record.sha256_hex != hashlib.sha256(path.read_bytes()).hexdigest():
            problems.append(f"log {log_id}: gateway SHA-256 differs from the suit's")
        truth = json.loads(Path(str(path) + ".truth.json").read_text())
        for bucket in ("raw", "analytics"):
            mine = [k for k in keys[bucket] if log_id in k]
            if len(mine) != 1:
                problems.append(f"log {log_id}: {len(mine)} objects in {bucket}")
                continue
            obj = client.get_object(Bucket=bucket, Key=mine[0])
            body = obj["Body"].read()
            if hashlib.sha256(body).hexdigest() != obj["Metadata"].get("sha256"):
                problems.append(f"log {log_id}: {bucket} object SHA-256 mismatch")
            if bucket == "analytics":
                analytics = json.loads(body)
                if (
                    analytics["log_id"] != log_id
                    or analytics["samples"] != truth["samples"]
                ):
                    problems.append(f"log {log_id}: analytics do not match the log")
    return problems


def main(argv: list[str] | None = None) -> int:
    """Run the kill test; print figures and problems; exit 1 on a problem."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=100)
    parser.add_argument("--initial-logs", type=int, default=6)
    parser.add_argument("--new-logs-every", type=int, default=8, metavar="KILLS")
    parser.add_argument("--max-s", type=float, default=1500.0, help="time bound")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep", type=Path, help="keep the work folder here")
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    started = time.monotonic()

    root = args.keep or Path(tempfile.mkdtemp(prefix="killtest-"))
    suit_dir, workdir = root / "suit", root / "gateway"
    suit_dir.mkdir(parents=True, exist_ok=True)
    ledger, config, log = (
        root / "erased.ledger",
        root / "agent.toml",
        root / "agent.log",
    )
    next_seed = 1000 * args.seed
    with run_seaweed(root / "seaweed") as s3:
        client = s3.client()
        for bucket in BUCKETS:
            client.create_bucket(Bucket=bucket)
        _write_config(config, workdir, s3)
        load_config(config)
        _dock_new_rides(suit_dir, list(range(next_seed, next_seed + args.initial_logs)))
        next_seed += args.initial_logs

        phases: collections.Counter[str] = collections.Counter()
        kills = docked_at = 0
        while kills < args.kills and time.monotonic() - started < args.max_s:
            offset = log.stat().st_size if log.exists() else 0
            worker = _start_worker(suit_dir, ledger, config, log)
            if not _wait_for(worker, "READY", READY_TIMEOUT_S):
                worker.kill()
                print(f"worker did not start; see {log}", file=sys.stderr)
                return 1
            time.sleep(rng.uniform(*KILL_DELAY_RANGE_S))
            idle = worker.poll() is not None
            if not idle:
                worker.send_signal(signal.SIGKILL)
                worker.wait()
                kills += 1
                phases[_phase_at_kill(log, offset, root / "phase")] += 1
            # The rider docks again: new rides every few kills, and at once
            # when the agent ran out of work before the kill.
            if idle or (kills % args.new_logs_every == 0 and kills != docked_at):
                docked_at = kills
                _dock_new_rides(suit_dir, [next_seed, next_seed + 1])
                next_seed += 2
            print(f"kills {kills}/{args.kills} {dict(phases)}", flush=True)

        worker = _start_worker(suit_dir, ledger, config, log)
        finished = _wait_for(worker, "DONE", FINAL_RUN_TIMEOUT_S)
        if not finished:
            worker.kill()
        problems = [] if finished else ["final run did not finish"]
        problems += _check(s3, workdir, suit_dir, ledger)

    logs = len(list(suit_dir.glob("*.slog")))
    print(f"kills: {kills} in {time.monotonic() - started:.0f} s; logs: {logs}")
    print(f"last activity before each kill: {dict(phases)}")
    print(f"work folder: {root}")
    if problems:
        print("PROBLEMS:")
        for problem in problems:
            print(f"  {problem}")
        return 1
    print(
        "OK: every erased log is stored once with matching SHA-256; none lost; "
        "no multipart upload left open"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
