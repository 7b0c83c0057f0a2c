"""Benchmark client-side envelope encryption against the same store without it.

Uploads one file of random bytes (default 50 MB, the private ride log size)
through the uploader into the local-directory store, once plain and once
through :class:`~edge_agent.upload.envelope.EnvelopeStore`, then downloads it
back, alternating the two for ``--rounds`` rounds, and prints the median
time and throughput of each beside the plain store (the baseline). The
local store takes the network out, so the difference is what encryption
costs the CPU (AES-256-GCM, one frame per 8 MiB part) plus the extra HEAD a
decrypting read makes. Everything lives in a temporary folder (real fsync).

Usage: python benchmarks/bench_store_encryption.py [--size-mb 50] [--rounds 5]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import tempfile
import time
from pathlib import Path

from edge_agent.upload import (
    EnvelopeStore,
    FileKeyRing,
    LocalDirStore,
    ObjectMetadata,
    ObjectRef,
    ObjectStore,
    Uploader,
    UploadJournal,
    UploadSettings,
    etags_are_body_md5,
)

MIB = 1024 * 1024


def _write_random(path: Path, size_bytes: int) -> str:
    digest = hashlib.sha256()
    with open(path, "wb") as out:
        for offset in range(0, size_bytes, MIB):
            chunk = os.urandom(min(MIB, size_bytes - offset))
            digest.update(chunk)
            out.write(chunk)
    return digest.hexdigest()


def _round_trip(
    store: ObjectStore, work: Path, source: Path, sha256_hex: str, key: str
) -> tuple[float, float]:
    """Upload ``source`` and download it again; return both durations (s)."""
    metadata = ObjectMetadata(sha256_hex, "L1", "SUIT-0001", "rider-1", "raw_csv")
    settings = UploadSettings(verify_etag=etags_are_body_md5(store))
    with UploadJournal(work / f"{key}.db") as journal:
        started = time.perf_counter()
        Uploader(store, journal, settings).upload_file(
            ObjectRef("raw", key), source, metadata
        )
        uploaded = time.perf_counter()
    target = work / f"{key}.back"
    store.download_file("raw", key, target)
    downloaded = time.perf_counter()
    with open(target, "rb") as back:
        if hashlib.file_digest(back, "sha256").hexdigest() != sha256_hex:
            raise SystemExit(f"{key}: downloaded bytes differ from the upload")
    target.unlink()
    store.delete_object("raw", key)
    return uploaded - started, downloaded - uploaded


def main() -> None:
    """Run the benchmark and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    size_bytes = args.size_mb * 1_000_000

    with tempfile.TemporaryDirectory(prefix="bench-store-") as folder:
        work = Path(folder)
        source = work / "log.bin"
        sha256_hex = _write_random(source, size_bytes)
        plain = LocalDirStore(work / "plain")
        sealed = EnvelopeStore(
            LocalDirStore(work / "sealed"), FileKeyRing(os.urandom(32))
        )
        stores: dict[str, ObjectStore] = {"plain": plain, "envelope": sealed}
        for store in stores.values():
            store.ensure_bucket("raw")
        times: dict[str, list[tuple[float, float]]] = {name: [] for name in stores}
        for round_number in range(args.rounds):
            for name, store in stores.items():
                key = f"{name}-{round_number}"
                times[name].append(_round_trip(store, work, source, sha256_hex, key))

    medians = {
        name: (
            statistics.median(up for up, _ in pairs),
            statistics.median(down for _, down in pairs),
        )
        for name, pairs in times.items()
    }
    print(f"{args.size_mb} MB, {args.rounds} rounds, median of each; baseline: plain")
    print(f"{'store':<10} {'upload s':>9} {'MB/s':>7} {'download s':>11} {'MB/s':>7}")
    for name, (up, down) in medians.items():
        print(
            f"{name:<10} {up:>9.2f} {args.size_mb / up:>7.0f} "
            f"{down:>11.2f} {args.size_mb / down:>7.0f}"
        )
    for index, column in enumerate(("upload", "download")):
        ratio = medians["envelope"][index] / medians["plain"][index]
        print(f"envelope / plain {column} time: {ratio:.2f}x")


if __name__ == "__main__":
    main()
