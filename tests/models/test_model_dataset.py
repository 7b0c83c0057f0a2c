"""Training windows from synthesised rides: seeds, plans, labels, augmentation."""

from __future__ import annotations

import numpy as np
import pytest

from models import contract
from models.dataset import (
    EDGE_S,
    build_window_set,
    plan_rides,
    ride_windows,
    split_seeds,
)
from models.errors import DatasetError


def test_split_seeds_are_disjoint_and_reproducible() -> None:
    train, validation = split_seeds(7, 500, 200)
    assert len(set(train)) == 500 and len(set(validation)) == 200
    assert not set(train) & set(validation)
    assert split_seeds(7, 500, 200) == (train, validation)
    other_train, other_validation = split_seeds(8, 500, 200)
    assert not set(other_train + other_validation) & set(train + validation)
    with pytest.raises(DatasetError, match="train_rides"):
        split_seeds(7, 0, 10)


def test_plan_rides_depends_on_seed_only() -> None:
    seeds = list(range(100, 140))
    specs = plan_rides(seeds)
    assert specs == plan_rides(seeds)
    assert [s.seed for s in specs] == seeds
    assert {s.crash is None for s in specs} == {True, False}
    assert len({s.scenario for s in specs}) == 4
    assert all(100.0 <= s.sample_rate_hz <= 1000.0 for s in specs)
    assert len({s.sample_rate_hz for s in specs}) >= 3
    for spec in specs:
        spec.validate()


def test_crash_ride_labels_and_augmentation() -> None:
    (spec,) = plan_rides([20])
    assert spec.crash is not None
    ride = ride_windows(spec, augment=True)
    assert ride.impact_s is not None
    assert ride.windows.shape[1:] == (contract.WINDOW_SAMPLES, 6)
    assert ride.windows.flags.c_contiguous

    positive = ride.starts_s[ride.labels == 1]
    assert 2 <= len(positive) <= 3
    assert np.all(positive + EDGE_S <= ride.impact_s)
    assert np.all(ride.impact_s <= positive + contract.WINDOW_S - EDGE_S)
    # Ignored: edges and the aftermath; riding long before stays negative.
    assert np.all(ride.labels[ride.starts_s < ride.impact_s - 3.0] == 0)
    assert (ride.labels == -1).sum() >= 10

    # Extra positives: the same signal as the hop windows, other offsets.
    assert len(ride.extra_windows) >= 20
    peak_row = np.abs(ride.extra_windows[:, :, :3]).sum(axis=2).argmax(axis=1)
    edge_rows = EDGE_S * contract.MODEL_RATE_HZ
    assert np.all(peak_row >= edge_rows - 30)
    assert np.all(peak_row <= contract.WINDOW_SAMPLES - edge_rows + 30)
    assert not ride_windows(spec).extra_windows.size


def test_window_set_concatenates_in_ride_order() -> None:
    specs = plan_rides([31, 32])
    rides = build_window_set(specs, augment=True)
    n = sum(len(r.windows) for r in rides.rides)
    assert rides.windows.shape[0] == n == len(rides.labels)
    windows, labels = rides.labelled()
    assert len(windows) == len(labels) == rides.labelled_count
    assert int(labels.sum()) == rides.positive_count
    assert set(np.unique(labels)) == {0, 1}
    np.testing.assert_array_equal(
        rides.windows[: len(rides.rides[0].windows)], rides.rides[0].windows
    )
