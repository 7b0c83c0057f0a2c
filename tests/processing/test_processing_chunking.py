"""Chunked processing gives the same results as processing in one piece."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from edge_agent.processing import CrashDetector, ProcessOptions, process_log
from firmware_bridge.synth import RideSpec, write_ride


@pytest.fixture(scope="module")
def ride(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("ride") / "ride.slog"
    # A wrapping counter, GNSS, a crash: every stateful stage has work to do.
    spec = RideSpec(seed=301, scenario="city", riding_s=150.0, crash="collision",
                    counter_start_us=(1 << 32) - 60_000_000)  # fmt: skip
    write_ride(spec, path)
    return path


def test_same_analytics_and_csv_for_any_chunk_size(
    ride: Path, tmp_path: Path, detector: CrashDetector
) -> None:
    results = []
    for chunk_s in (1e9, 15.0, 2.5):
        options = ProcessOptions(chunk_s=chunk_s, fsync=False)
        out = tmp_path / f"chunk-{chunk_s}"
        results.append(process_log(ride, "r", "s", out, detector, options=options))

    whole = results[0]
    assert whole.analytics["crash"]["detected"] is True
    assert whole.analytics["quality"]["counter_wraps"] == 1
    with gzip.open(whole.csv_path, "rb") as stream:
        whole_csv = stream.read()
    for chunked in results[1:]:
        assert chunked.analytics == whole.analytics
        with gzip.open(chunked.csv_path, "rb") as stream:
            assert stream.read() == whole_csv
