"""Crash verdicts through LiteRT: events, timing, coarse input, batching."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from edge_agent.processing import (
    CrashDetector,
    CrashModelError,
    ProcessOptions,
    process_log,
)
from models import contract
from tests.processing.builders import RestLog, write_log
from tests.processing.tiny_model import build_tiny_model


def _run(tmp_path, log: RestLog, detector, chunk_s: float = 5.0):
    path = write_log(tmp_path / "ride.slog", log)
    options = ProcessOptions(chunk_s=chunk_s, fsync=False)
    return process_log(path, "r", "s", tmp_path / "out", detector, options=options)


def test_shock_is_a_crash_at_its_peak(tmp_path, detector: CrashDetector) -> None:
    log = RestLog(n=30_000)
    log.shock(at_s=17.30, peak_g=9.0, width_s=0.04)
    result = _run(tmp_path, log, detector)
    crash = result.analytics["crash"]
    assert crash["detected"] is True
    [event] = crash["events"]
    assert event["t_offset_s"] == pytest.approx(17.32, abs=0.02)
    assert event["peak_g"] == pytest.approx(9.0, abs=0.3)
    assert event["probability"] > 0.99
    assert event["t_utc"] == "2025-06-15T15:06:%06.3f000Z" % (40 + event["t_offset_s"])
    assert result.analytics["model"] == detector.model_block
    assert result.analytics["model"]["version"] == "test-1"


def test_quiet_ride_is_no_crash(tmp_path, detector: CrashDetector) -> None:
    result = _run(tmp_path, RestLog(n=20_000), detector)
    assert result.analytics["crash"] == {"detected": False, "events": []}
    assert result.crash.windows == 37  # (20 s - 2 s) / 0.5 s + 1


def test_clipped_impact_beats_a_smaller_unclipped_one(tmp_path, detector) -> None:
    log = RestLog(n=20_000)
    log.shock(at_s=10.0, peak_g=26.0, width_s=0.06)  # clipped at 16 g
    # Later, 15 g forward and 8 g sideways at once: 17 g, none clipped.
    log.shock(at_s=10.6, peak_g=15.0, width_s=0.03)
    log.records["acc"][10_615, 1] = 16_000
    result = _run(tmp_path, log, detector)
    [event] = result.analytics["crash"]["events"]
    assert event["t_offset_s"] == pytest.approx(10.03, abs=0.02)
    assert event["peak_g"] > 20.0


def test_alarms_within_five_seconds_are_one_event(tmp_path, detector) -> None:
    # A tumbling crash: hits 4 s apart (windows in between stay calm) are one
    # event at the larger; a hit 10 s after the last one is a second event.
    log = RestLog(n=40_000)
    log.shock(at_s=10.0, peak_g=9.0, width_s=0.04)
    log.shock(at_s=14.0, peak_g=12.0, width_s=0.04)
    log.shock(at_s=24.0, peak_g=8.0, width_s=0.04)
    crash = _run(tmp_path, log, detector).analytics["crash"]
    first, second = crash["events"]
    assert first["t_offset_s"] == pytest.approx(14.02, abs=0.02)
    assert first["peak_g"] == pytest.approx(12.0, abs=0.3)
    assert second["t_offset_s"] == pytest.approx(24.02, abs=0.02)


def test_coarse_input_cannot_be_judged(tmp_path, detector: CrashDetector) -> None:
    rate_hz = contract.MIN_NATIVE_RATE_HZ / 2
    log = RestLog(n=int(60 * rate_hz), rate_hz=rate_hz)
    log.shock(at_s=30.0, peak_g=12.0, width_s=0.2)
    result = _run(tmp_path, log, detector)
    crash = result.analytics["crash"]
    assert crash["detected"] is None
    assert crash["events"] == []
    assert "25 Hz" in crash["reason"] and "50 Hz" in crash["reason"]
    # The rest of the analytics is still there.
    assert result.analytics["samples"] == len(log.records)


def test_ride_shorter_than_a_window_cannot_be_judged(tmp_path, detector) -> None:
    result = _run(tmp_path, RestLog(n=1500), detector)
    crash = result.analytics["crash"]
    assert crash["detected"] is None
    assert "shorter than one 2 s window" in crash["reason"]


def test_streamed_scoring_equals_scoring_all_windows(detector: CrashDetector) -> None:
    rng = np.random.default_rng(5)
    model_input = rng.normal(0.0, 0.3, (30_000, 6)).astype(np.float32)
    model_input[12_345, 0] = 9.0
    peaks = np.abs(model_input[:, :3]).max(axis=1)
    whole = detector.predict(contract.make_windows(model_input))

    scorer = detector.scorer()
    stops = [0, 350, 7000, 7001, 19_999, 29_000, len(model_input)]
    for start, stop in itertools.pairwise(stops):
        scorer.push(model_input[start:stop])
    verdict = scorer.finish(peaks, None)
    assert verdict.windows == len(whole)
    np.testing.assert_array_equal(scorer.probability, whole)
    [event] = verdict.events
    assert event.t_offset_s == pytest.approx(123.45, abs=0.01)


def test_tampered_model_is_refused(tmp_path) -> None:
    path = build_tiny_model(tmp_path / "m.tflite")
    data = bytearray(path.read_bytes())
    data[-10] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(CrashModelError, match="SHA-256"):
        CrashDetector.load(path)
