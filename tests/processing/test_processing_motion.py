"""Manoeuvre helpers: moving average, turn counting, hard braking."""

from __future__ import annotations

import numpy as np
import pytest

from edge_agent.processing.motion import (
    count_hard_braking,
    count_turns,
    extremes,
    moving_average,
)

RATE_HZ = 100.0


def _reference_average(x: np.ndarray, width: int) -> np.ndarray:
    half = width // 2
    return np.array(
        [
            x[max(0, i - half) : min(len(x), i - half + width)].mean()
            for i in range(len(x))
        ]
    )


@pytest.mark.parametrize("n", [1, 7, 100])
@pytest.mark.parametrize("width", [1, 2, 5, 6, 7])
def test_moving_average_matches_a_plain_loop(n: int, width: int) -> None:
    x = np.random.default_rng(n * width).normal(size=n)
    expected = _reference_average(x, min(width, n)) if width > 1 else x
    np.testing.assert_allclose(moving_average(x, width), expected, atol=1e-12)


def _turn(angle_deg: float, duration_s: float) -> np.ndarray:
    """Return a heading-rate profile (deg/s) turning by ``angle_deg``."""
    n = int(duration_s * RATE_HZ)
    shape = np.sin(np.pi * (np.arange(n) + 0.5) / n)
    return angle_deg * shape / (shape.sum() / RATE_HZ)


def _straight(duration_s: float) -> np.ndarray:
    return np.zeros(int(duration_s * RATE_HZ))


def test_turns_count_by_direction_and_size() -> None:
    rate = np.concatenate(
        [
            _straight(5), _turn(90, 4), _straight(5), _turn(-60, 3), _straight(5),
            _turn(20, 3), _straight(5), _turn(-25, 2), _straight(5), _turn(270, 12),
            _straight(5), _turn(46, 3), _straight(5),
        ]
    )  # fmt: skip
    noise = np.random.default_rng(1).normal(0.0, 1.0, len(rate))
    riding = np.ones(len(rate), dtype=bool)
    assert count_turns(rate + noise, RATE_HZ, riding) == (3, 1)


def test_turns_outside_the_riding_mask_do_not_count() -> None:
    rate = np.concatenate([_straight(5), _turn(180, 4), _straight(5), _turn(90, 4)])
    riding = np.ones(len(rate), dtype=bool)
    riding[: int(9.5 * RATE_HZ)] = False  # walking: the u-turn on foot
    assert count_turns(rate, RATE_HZ, riding) == (1, 0)


def test_hard_braking_needs_half_a_second_above_0_4_g() -> None:
    def brake(peak_g: float, above_s: float) -> np.ndarray:
        return np.full(int(above_s * RATE_HZ), -peak_g)

    accel = np.concatenate(
        [
            _straight(3), brake(0.6, 0.9), _straight(3), brake(0.6, 0.3), _straight(3),
            brake(0.3, 2.0), _straight(3), brake(0.5, 0.7), _straight(3),
        ]
    )  # fmt: skip
    riding = np.ones(len(accel), dtype=bool)
    assert count_hard_braking(accel, RATE_HZ, riding) == 2


def test_extremes_are_positive_magnitudes() -> None:
    lean = np.concatenate([np.full(100, -35.0), np.zeros(100), np.full(100, 20.0)])
    riding = np.ones(len(lean), dtype=bool)
    assert extremes(lean, RATE_HZ, riding) == pytest.approx((20.0, 35.0))
    assert extremes(lean, RATE_HZ, np.zeros(len(lean), dtype=bool)) is None
