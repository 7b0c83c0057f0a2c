"""The streaming resampler gives the contract's model input, however chunked."""

from __future__ import annotations

import numpy as np
import pytest

from edge_agent.processing.resample import StreamingResampler
from models.contract import resample_to_model_rate


def _stream(t_s: np.ndarray, values: np.ndarray, rate_hz: float, pieces: int):
    resampler = StreamingResampler(rate_hz, values.shape[1])
    blocks = []
    for part in np.array_split(np.arange(len(t_s)), pieces):
        blocks.append(resampler.push(t_s[part], values[part]))
    blocks.append(resampler.finish())
    starts = [b.start for b in blocks if len(b)]
    joined = np.concatenate([b.values for b in blocks if len(b)])
    return starts, joined


@pytest.mark.parametrize("rate_hz", [1000.0, 400.0, 100.0, 60.0])
@pytest.mark.parametrize("pieces", [1, 3, 50])
def test_streaming_matches_contract_resampling(rate_hz: float, pieces: int) -> None:
    rng = np.random.default_rng(int(rate_hz) + pieces)
    n = int(rate_hz * 7.3)
    t_s = np.arange(n) / rate_hz + rng.uniform(-0.1, 0.1, n) / rate_hz
    t_s -= t_s[0]
    values = rng.normal(0.0, 1.0, (n, 6)).cumsum(axis=0)

    _, expected = resample_to_model_rate(t_s, values, rate_hz)
    starts, streamed = _stream(t_s, values, rate_hz, pieces)

    assert starts[0] == 0
    assert streamed.shape == expected.shape
    np.testing.assert_allclose(streamed, expected, rtol=0, atol=1e-4)


def test_grid_points_are_consecutive_across_pushes() -> None:
    rate_hz = 1000.0
    t_s = np.arange(5000) / rate_hz
    values = np.ones((5000, 2))
    resampler = StreamingResampler(rate_hz, 2)
    next_start = 0
    for part in np.array_split(np.arange(5000), 13):
        block = resampler.push(t_s[part], values[part])
        if len(block):
            assert block.start == next_start
            next_start += len(block)
    tail = resampler.finish()
    assert next_start + len(tail) == 500
