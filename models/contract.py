"""Crash model input/output contract v1, shared by training and inference.

Windows of 2.0 s at 100 Hz (200 samples) of 3-axis acceleration in g and
3-axis angular rate in rad/s, in the suit's body frame (x forward, y left,
z up), taken every 0.5 s. Normalisation lives inside the model. Outputs are
``crash_probability`` (one value per window) and ``embedding`` (at most 64
values per window, the input of the last layer). Event records such as the
airbag flag are labels, never inputs.

Training and the gateway both build windows with the functions below, so the
model sees at inference exactly what it saw in training.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

__all__ = [
    "CONTRACT_VERSION",
    "EMBEDDING_MAX_SIZE",
    "HOP_SAMPLES",
    "INPUT_CHANNELS",
    "INPUT_NAME",
    "MIN_NATIVE_RATE_HZ",
    "MODEL_RATE_HZ",
    "OUTPUT_EMBEDDING",
    "OUTPUT_PROBABILITY",
    "WINDOW_HOP_S",
    "WINDOW_S",
    "WINDOW_SAMPLES",
    "make_windows",
    "resample_to_model_rate",
    "window_starts_s",
]

CONTRACT_VERSION = 1
MODEL_RATE_HZ = 100.0
WINDOW_S = 2.0
WINDOW_HOP_S = 0.5
WINDOW_SAMPLES = int(WINDOW_S * MODEL_RATE_HZ)
HOP_SAMPLES = int(WINDOW_HOP_S * MODEL_RATE_HZ)
INPUT_CHANNELS = (
    "acc_x_g",
    "acc_y_g",
    "acc_z_g",
    "gyr_x_rads",
    "gyr_y_rads",
    "gyr_z_rads",
)
EMBEDDING_MAX_SIZE = 64
INPUT_NAME = "imu_window"
OUTPUT_PROBABILITY = "crash_probability"
OUTPUT_EMBEDDING = "embedding"

# Below this native rate the 100 Hz model input would be mostly interpolation:
# a 2 s window at 2 Hz holds four real samples. The pipeline then reports
# ``crash.detected = null`` instead of guessing.
MIN_NATIVE_RATE_HZ = 50.0


def resample_to_model_rate(
    t_s: npt.NDArray[np.float64],
    values: npt.NDArray[np.floating],
    native_rate_hz: float,
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float32]]:
    """Resample ``values`` (n, c) sampled at ``t_s`` onto the 100 Hz model grid.

    Above 100 Hz a boxcar anti-alias filter as wide as one output period is
    applied first (a moving average over ``native/100`` samples), then values
    are linearly interpolated at the grid instants. Returns the grid times
    (starting at ``t_s[0]``) and the resampled values as float32.
    """
    values = np.asarray(values, dtype=np.float64)
    if len(t_s) == 0:
        return np.empty(0), np.empty((0, values.shape[1]), dtype=np.float32)
    width = round(native_rate_hz / MODEL_RATE_HZ)
    if width > 1:
        cumsum = np.cumsum(np.vstack([np.zeros((1, values.shape[1])), values]), axis=0)
        source_v = (cumsum[width:] - cumsum[:-width]) / width
        # Stamp each average at the middle of its span to keep events in place.
        source_t = (t_s[: len(source_v)] + t_s[width - 1 :]) / 2.0
    else:
        source_t, source_v = t_s, values
    n_out = int(np.floor((t_s[-1] - t_s[0]) * MODEL_RATE_HZ)) + 1
    grid = t_s[0] + np.arange(n_out) / MODEL_RATE_HZ
    out = np.empty((n_out, values.shape[1]), dtype=np.float32)
    for channel in range(values.shape[1]):
        out[:, channel] = np.interp(grid, source_t, source_v[:, channel])
    return grid, out


def make_windows(model_input: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """Cut (n, 6) model-rate input into (n_windows, 200, 6) windows every 0.5 s.

    Returns a read-only strided view (no copy); windows that would run past the
    end are dropped.
    """
    if len(model_input) < WINDOW_SAMPLES:
        return np.empty((0, WINDOW_SAMPLES, model_input.shape[1]), dtype=np.float32)
    view = np.lib.stride_tricks.sliding_window_view(
        model_input, WINDOW_SAMPLES, axis=0
    )[::HOP_SAMPLES]
    return view.transpose(0, 2, 1)


def window_starts_s(n_windows: int, t0_s: float = 0.0) -> npt.NDArray[np.float64]:
    """Return the start time of each window made by ``make_windows``."""
    return t0_s + np.arange(n_windows, dtype=np.float64) * WINDOW_HOP_S
