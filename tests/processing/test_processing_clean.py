"""Cleaning: counter unwrap, reordering, duplicates, gaps, chunk independence."""

from __future__ import annotations

import numpy as np
import pytest

from edge_agent.processing.clean import (
    REORDER_HORIZON_US,
    CounterUnwrapper,
    QualityCounters,
    SampleCleaner,
    place_counter,
)
from edge_agent.processing.samples import SampleChunk


def _chunk(t_us: np.ndarray) -> SampleChunk:
    n = len(t_us)
    acc = np.zeros((n, 3), dtype=np.float32)
    # Tag each sample with its arrival index to see which copy survives.
    acc[:, 0] = np.arange(n)
    return SampleChunk(t_us.astype(np.int64), acc, np.zeros((n, 3), np.float32))


def _clean(t_us: np.ndarray, pieces: int, rate_hz: float = 1000.0):
    quality = QualityCounters()
    cleaner = SampleCleaner(rate_hz, quality)
    chunk = _chunk(t_us)
    out = []
    for part in np.array_split(np.arange(len(t_us)), pieces):
        done = cleaner.push(chunk.take(part))
        if done is not None:
            out.append(done)
    done = cleaner.finish()
    if done is not None:
        out.append(done)
    return SampleChunk.concat(out), quality


def test_counter_unwrap_across_two_to_the_32() -> None:
    start = (1 << 32) - 5_000
    raw = (start + np.arange(0, 20_000, 1000)) % (1 << 32)
    unwrapper = CounterUnwrapper(start)
    first = unwrapper.unwrap(raw[:3].astype(np.uint32))
    rest = unwrapper.unwrap(raw[3:].astype(np.uint32))
    times = np.concatenate([first, rest])
    assert np.array_equal(np.diff(times), np.full(len(raw) - 1, 1000))
    assert unwrapper.wraps == 1


def test_counter_jitter_across_the_wrap_counts_once() -> None:
    start = (1 << 32) - 2_000
    offsets = np.array([0, 1000, 2500, 1900, 3000, 2800, 4000])
    raw = ((start + offsets) % (1 << 32)).astype(np.uint32)
    unwrapper = CounterUnwrapper(start)
    times = unwrapper.unwrap(raw)
    assert np.array_equal(times - start, offsets)
    assert unwrapper.wraps == 1


def test_side_records_placed_against_the_last_sample() -> None:
    reference_raw, reference_us = 100, (1 << 32) + 100
    fixes = np.array([(1 << 32) - 900, 50], dtype=np.uint32)
    placed = place_counter(fixes, reference_raw, reference_us)
    assert placed.tolist() == [(1 << 32) - 900, (1 << 32) + 50]


@pytest.mark.parametrize("pieces", [1, 3, 17])
def test_cleaner_drops_duplicates_keeping_the_first(pieces: int) -> None:
    t = np.arange(5000) * 1000
    repeated = np.insert(t, [100, 101, 4000], [t[100], t[100], t[3999]])
    out, quality = _clean(repeated, pieces)
    assert np.array_equal(out.t_us, t)
    assert quality.duplicates == 3
    assert quality.out_of_order == 0
    # The copy that arrived first is the one kept.
    assert out.acc_mps2[100, 0] == 100


@pytest.mark.parametrize("pieces", [1, 4, 29])
def test_cleaner_puts_late_samples_back_in_order(pieces: int) -> None:
    t = np.arange(6000) * 1000
    arrived = t.copy()
    arrived[[1000, 1001]] = arrived[[1001, 1000]]  # swapped pair
    arrived[2000:3024] = np.roll(arrived[2000:3024], 512)  # a block half late
    out, quality = _clean(arrived, pieces)
    assert np.array_equal(out.t_us, t)
    assert quality.out_of_order == 1 + 512
    assert quality.duplicates == 0


def test_cleaner_drops_samples_later_than_the_horizon() -> None:
    t = np.arange(10_000) * 1000
    late = REORDER_HORIZON_US // 1000 + 500
    arrived = np.concatenate([t[:5000], t[5000 + 1 :], [t[5000]]])
    assert t[-1] - t[5000] > late * 1000
    out, quality = _clean(arrived, 7)
    assert len(out) == len(t) - 1
    assert 5_000_000 not in out.t_us
    assert quality.out_of_order == 1
    assert quality.gaps == 1


def test_cleaner_counts_gaps_longer_than_the_threshold() -> None:
    t = np.arange(3000) * 1000
    kept = np.concatenate([t[:1000], t[1001:2000], t[2100:]])  # 1 and 100 lost
    jitter = kept + np.random.default_rng(3).integers(-200, 200, len(kept))
    _, quality = _clean(jitter, 5)
    assert quality.gaps == 2


def test_cleaner_output_does_not_depend_on_chunking() -> None:
    rng = np.random.default_rng(11)
    t = np.arange(20_000) * 1000 + rng.integers(-100, 100, 20_000)
    arrived = t.copy()
    swaps = rng.integers(1, 19_999, 300)
    arrived[swaps], arrived[swaps - 1] = arrived[swaps - 1], arrived[swaps]
    arrived = np.insert(arrived, rng.integers(0, 20_000, 50), arrived[:50])
    arrived = np.delete(arrived, rng.integers(0, 20_000, 40))
    results = [_clean(arrived, pieces) for pieces in (1, 2, 9, 64, 333)]
    reference_out, reference_quality = results[0]
    assert np.all(np.diff(reference_out.t_us) > 0)
    for out, quality in results[1:]:
        assert np.array_equal(out.t_us, reference_out.t_us)
        assert quality == reference_quality
