"""The crash detector network: a small 1D CNN over contract v1 windows.

Shape (16.8k parameters, about 0.7 M multiply-adds per window)::

    imu_window [b, 200, 6]
    -> concat(window, |acc|, |gyro|)                    [b, 200, 8]
    -> Normalization (per-channel mean and variance of the training windows)
    -> Conv1D 16, k7, stride 2 -> BN -> ReLU           [b, 100, 16]
    -> Conv1D 32, k5 -> BN -> ReLU -> MaxPool 2         [b, 50, 32]
    -> Conv1D 32, k5 -> BN -> ReLU -> MaxPool 2         [b, 25, 32]
    -> Conv1D 48, k3 -> BN -> ReLU                      [b, 25, 48]
    -> concat(GlobalMaxPool, GlobalAveragePool)         [b, 96]
    -> Dropout -> Dense 32, ReLU = ``embedding``        [b, 32]
    -> Dense 1, sigmoid = ``crash_probability``         [b, 1]

The impact is short (tens of milliseconds) and may sit anywhere in the
window, so the head pools over time: global max catches the spike, global
average the context (riding, sliding, lying still). ``embedding`` is exactly
the input of the last layer, which federated training fine-tunes in NumPy.

TensorFlow is imported inside the functions: importing this module costs
nothing on a machine that only runs the exported model.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import numpy.typing as npt

from . import contract

__all__ = ["EMBEDDING_SIZE", "FEATURE_CHANNELS", "build_network", "feature_values"]

_LOGGER = logging.getLogger(__name__)

# 32 values: enough for the head to separate crash types and riding contexts,
# small enough that the gateway's NumPy head training stays trivial.
EMBEDDING_SIZE = 32
# Dropout before the embedding layer only: the embedding must stay the exact
# input of the output layer.
DROPOUT_RATE = 0.2
# The network's own input channels: the contract's six, then |acc| in g and
# |gyro| in rad/s (computed inside the model, so the contract is unchanged).
FEATURE_CHANNELS = (*contract.INPUT_CHANNELS, "acc_norm_g", "gyr_norm_rads")
# Keeps the square root's gradient finite at exactly zero.
_NORM_EPS = 1e-6
_CONV_LAYERS: tuple[tuple[int, int, int, bool], ...] = (
    # filters, kernel, stride, pool after
    (16, 7, 2, False),
    (32, 5, 1, True),
    (32, 5, 1, True),
    (48, 3, 1, False),
)


def feature_values(windows: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """Return (n, 200, 8) feature channels of windows, as the model builds them."""
    w = np.asarray(windows, dtype=np.float64)
    acc = np.sqrt(np.sum(w[..., :3] ** 2, axis=-1, keepdims=True) + _NORM_EPS)
    gyr = np.sqrt(np.sum(w[..., 3:] ** 2, axis=-1, keepdims=True) + _NORM_EPS)
    return np.concatenate([w, acc, gyr], axis=-1)


def build_network(
    normalisation_windows: npt.NDArray[np.float32] | None = None,
    embedding_size: int = EMBEDDING_SIZE,
) -> Any:
    """Build the (uncompiled) Keras model with outputs named per the contract.

    Args:
        normalisation_windows: (n, 200, 6) windows whose per-channel mean and
            variance the normalisation layer adopts; ``None`` leaves it at
            identity (mean 0, variance 1), e.g. for tests.
        embedding_size: length of the ``embedding`` output (<= 64).

    Returns:
        A ``keras.Model`` mapping ``imu_window`` to a dict with
        ``crash_probability`` [b, 1] and ``embedding`` [b, embedding_size].
    """
    import keras
    from keras import layers

    if not 1 <= embedding_size <= contract.EMBEDDING_MAX_SIZE:
        raise ValueError(
            f"embedding_size must be 1..{contract.EMBEDDING_MAX_SIZE}, "
            f"found {embedding_size}"
        )
    channels = len(contract.INPUT_CHANNELS)
    window = keras.Input(
        (contract.WINDOW_SAMPLES, channels), name=contract.INPUT_NAME, dtype="float32"
    )

    features = len(FEATURE_CHANNELS)
    if normalisation_windows is None:
        mean = np.zeros(features, dtype=np.float32)
        variance = np.ones(features, dtype=np.float32)
    else:
        flat = feature_values(normalisation_windows).reshape(-1, features)
        mean = flat.mean(axis=0).astype(np.float32)
        variance = np.maximum(flat.var(axis=0), 1e-6).astype(np.float32)
    # Rotation-invariant channels: the sensor may sit in any orientation, the
    # magnitudes of acceleration and angular rate do not change with it.
    acc_norm = keras.ops.sqrt(
        keras.ops.sum(keras.ops.square(window[:, :, :3]), axis=-1, keepdims=True)
        + _NORM_EPS
    )
    gyr_norm = keras.ops.sqrt(
        keras.ops.sum(keras.ops.square(window[:, :, 3:]), axis=-1, keepdims=True)
        + _NORM_EPS
    )
    x = layers.Concatenate(name="features")([window, acc_norm, gyr_norm])
    x = layers.Normalization(axis=-1, mean=mean, variance=variance, name="normalise")(x)

    for i, (filters, kernel, stride, pool) in enumerate(_CONV_LAYERS):
        x = layers.Conv1D(
            filters,
            kernel,
            strides=stride,
            padding="same",
            use_bias=False,
            name=f"conv{i}",
        )(x)
        x = layers.BatchNormalization(name=f"bn{i}")(x)
        x = layers.ReLU(name=f"relu{i}")(x)
        if pool:
            x = layers.MaxPooling1D(2, name=f"pool{i}")(x)

    pooled = layers.Concatenate(name="pooled")(
        [
            layers.GlobalMaxPooling1D(name="global_max")(x),
            layers.GlobalAveragePooling1D(name="global_avg")(x),
        ]
    )
    pooled = layers.Dropout(DROPOUT_RATE, name="dropout")(pooled)
    embedding = layers.Dense(
        embedding_size, activation="relu", name=contract.OUTPUT_EMBEDDING
    )(pooled)
    probability = layers.Dense(
        1, activation="sigmoid", name=contract.OUTPUT_PROBABILITY
    )(embedding)
    model = keras.Model(
        window,
        {
            contract.OUTPUT_PROBABILITY: probability,
            contract.OUTPUT_EMBEDDING: embedding,
        },
        name="crash_detector",
    )
    _LOGGER.debug("built crash network: %d parameters", model.count_params())
    return model
