"""Benchmark the custody buffer with encryption at rest against plaintext.

Prints, side by side for a plaintext buffer (the baseline) and an encrypted
one, the median over the rounds of:

* a pull: ``begin_log``, appends of 64 KiB (the BLE puller's batch, one
  fsync each) and ``complete_log`` (SHA-256 over the stored plaintext);
* handing the raw log to processing (``readable_raw``: the stored file
  itself, or a decrypted working copy);
* a plaintext SHA-256 pass over the stored log (what the uploader's check
  and the rebuild cost per byte);

plus the encrypted file's size overhead. All files live in a temporary
folder on the disk that holds it, so pull figures include real fsyncs.

Usage: python benchmarks/bench_custody.py [--log-mb 50] [--rounds 3]
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import os
import statistics
import tempfile
import time
from pathlib import Path

from edge_agent.custody import CustodyBuffer, generate_key_file

# The BLE puller hands the sink 64 KiB per append (transfer.puller.FLUSH_BYTES).
APPEND_BYTES = 64 * 1024
SUIT = "SUIT-BENCH"
# Bounds: at most this many rounds and this log size, whatever is asked.
MAX_ROUNDS = 10
MAX_LOG_MB = 500


def _pull(buffer: CustodyBuffer, log_id: str, data: bytes) -> float:
    started = time.perf_counter()
    sha256_hex = hashlib.sha256(data).hexdigest()
    offset = buffer.begin_log(SUIT, log_id, len(data), sha256_hex)
    view = memoryview(data)
    while offset < len(data):
        piece = bytes(view[offset : offset + APPEND_BYTES])
        buffer.append_log_bytes(log_id, offset, piece)
        offset += len(piece)
    buffer.complete_log(log_id)
    return time.perf_counter() - started


def _hand_over(buffer: CustodyBuffer, log_id: str) -> float:
    started = time.perf_counter()
    with buffer.readable_raw(log_id) as path:
        path.stat()
    return time.perf_counter() - started


def _digest(buffer: CustodyBuffer, log_id: str) -> float:
    started = time.perf_counter()
    with buffer.open_raw(log_id) as stream:
        digest = hashlib.sha256()
        while chunk := stream.read(1024 * 1024):
            digest.update(chunk)
    return time.perf_counter() - started


def _measure(
    root: Path, key_file: Path | None, data: bytes, rounds: int
) -> dict[str, float]:
    pulls, handovers, digests = [], [], []
    with CustodyBuffer.open(root, key_file=key_file) as buffer:
        for number in range(rounds):
            log_id = f"L{number}"
            pulls.append(_pull(buffer, log_id, data))
            handovers.append(_hand_over(buffer, log_id))
            digests.append(_digest(buffer, log_id))
        raw = buffer.get("L0").raw_path
        stored_bytes = raw.stat().st_size if raw is not None else 0
    return {
        "pull_s": statistics.median(pulls),
        "handover_s": statistics.median(handovers),
        "digest_s": statistics.median(digests),
        "stored_bytes": float(stored_bytes),
    }


def main() -> None:
    """Run the benchmark and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--log-mb", type=float, default=50.0)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    # The buffer warns that the temporary work folder is not on tmpfs.
    logging.basicConfig(level=logging.ERROR)
    size_bytes = int(min(args.log_mb, MAX_LOG_MB) * 1e6)
    rounds = max(1, min(args.rounds, MAX_ROUNDS))
    data = os.urandom(size_bytes)

    with tempfile.TemporaryDirectory(prefix="bench-custody-") as folder:
        base = Path(folder)
        key = generate_key_file(base / "custody.key")
        plain = _measure(base / "plain", None, data, rounds)
        sealed = _measure(base / "sealed", key, data, rounds)

    mb = size_bytes / 1e6
    print(
        f"custody buffer, {mb:.0f} MB log, {APPEND_BYTES // 1024} KiB appends, "
        f"median of {rounds} rounds"
    )
    print(f"{'':34}{'plaintext':>14}{'encrypted':>14}{'time enc/plain':>16}")
    for label, key_name in (
        ("pull (append+fsync, complete)", "pull_s"),
        ("raw handed to processing", "handover_s"),
        ("plaintext SHA-256 pass", "digest_s"),
    ):
        base_s, enc_s = plain[key_name], sealed[key_name]
        ratio = enc_s / base_s if base_s > 0 else float("nan")
        print(
            f"{label:<34}{mb / base_s:>10.0f} MB/s{mb / enc_s:>9.0f} MB/s{ratio:>7.2f}x"
        )
    overhead = sealed["stored_bytes"] / plain["stored_bytes"] - 1
    print(
        f"{'size on disk':<34}{plain['stored_bytes']:>14.0f}"
        f"{sealed['stored_bytes']:>14.0f}{overhead * 100:>7.2f}%"
    )


if __name__ == "__main__":
    main()
