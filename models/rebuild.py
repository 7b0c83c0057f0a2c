"""Rebuild a full TFLite crash model from the Keras network and new head weights.

Federated training changes only the head (``models.head``). The cloud turns
aggregated head weights into a model the fleet can run with
``rebuild_model``: it loads the shipped Keras network
(``models/shipped/crash_v1.keras``, the same network the shipped ``.tflite``
was converted from), sets the output layer to the new weights, converts to
float32 or int8 TFLite, checks the result on LiteRT against the NumPy head,
and writes the ``.tflite`` with its metadata JSON (a copy of the base model's
metadata with the new version, SHA-256, head and creation time).

Precisions: ``float32``, ``int8`` (int8 weights, float activations; no
calibration needed) and ``int8-full`` (full integer), which needs calibration
windows; without any given, the shipped calibration set
(``crash_v1.calibration.npz``, windows of the training data) is used.

TensorFlow is imported inside the functions (cloud and R&D side only).
Errors: ``ModelFileError`` (a file missing or unreadable),
``ModelContractError`` (the rebuilt model disagrees with the head).
"""

from __future__ import annotations

import dataclasses
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from . import contract
from .errors import ModelContractError, ModelFileError
from .head import ModelHead
from .metadata import (
    PRECISION_FLOAT32,
    PRECISION_INT8,
    PRECISION_INT8_FULL,
    PRECISIONS,
    ModelMetadata,
    load_metadata,
    save_metadata,
)
from .registry import file_sha256, metadata_path_for, shipped_path

__all__ = [
    "CALIBRATION_KEY",
    "HEAD_CHECK_ATOL",
    "apply_head",
    "head_from_keras",
    "load_calibration",
    "load_keras",
    "rebuild_model",
    "rebuild_tflite",
    "save_calibration",
]

_LOGGER = logging.getLogger(__name__)

# Array name inside a calibration ``.npz``.
CALIBRATION_KEY = "windows"
# The rebuilt model's probability vs the NumPy head on its own embedding:
# float32 round-off only for float, one int8 step of the output (1/256) plus
# the embedding's quantisation for int8.
HEAD_CHECK_ATOL = {
    PRECISION_FLOAT32: 1e-4,
    PRECISION_INT8: 1e-4,
    PRECISION_INT8_FULL: 0.03,
}


def load_keras(keras_path: Path | None = None) -> Any:
    """Load a Keras crash network (default: the shipped one).

    Raises:
        ModelFileError: the file is missing or not a Keras model.
    """
    import keras

    path = Path(keras_path) if keras_path is not None else shipped_path(".keras")
    try:
        return keras.saving.load_model(path, compile=False)
    except (OSError, ValueError) as exc:
        raise ModelFileError(f"{path}: cannot load the Keras model: {exc}") from exc


def load_calibration(path: Path | None = None) -> npt.NDArray[np.float32]:
    """Load calibration windows (n, 200, 6) from an ``.npz`` (default: shipped).

    Raises:
        ModelFileError: the file is missing or holds no ``windows`` array.
    """
    path = Path(path) if path is not None else shipped_path(".calibration.npz")
    try:
        with np.load(path) as data:
            windows = np.asarray(data[CALIBRATION_KEY], dtype=np.float32)
    except (OSError, KeyError, ValueError) as exc:
        raise ModelFileError(f"{path}: cannot read calibration windows: {exc}") from exc
    return windows


def save_calibration(path: Path, windows: npt.NDArray[np.float32]) -> None:
    """Write calibration windows to an ``.npz`` that ``load_calibration`` reads.

    Stored as float16: half the bytes in the package, and calibration only
    needs each tensor's value range.
    """
    arrays: dict[str, Any] = {CALIBRATION_KEY: np.asarray(windows, np.float16)}
    np.savez_compressed(path, **arrays)


def head_from_keras(model: Any) -> ModelHead:
    """Return the head (output layer weights) of a Keras crash network."""
    kernel, bias = model.get_layer(contract.OUTPUT_PROBABILITY).get_weights()
    return ModelHead(np.asarray(kernel, np.float32).reshape(-1), float(bias[0]))


def apply_head(model: Any, head: ModelHead) -> None:
    """Set the output layer of ``model`` to ``head``, in place.

    Raises:
        ModelContractError: the head's length differs from the embedding's.
    """
    layer = model.get_layer(contract.OUTPUT_PROBABILITY)
    kernel, _ = layer.get_weights()
    if kernel.shape[0] != head.embedding_dim:
        raise ModelContractError(
            f"head has {head.embedding_dim} weights, the network's embedding "
            f"{kernel.shape[0]}"
        )
    layer.set_weights(
        [
            head.kernel.reshape(-1, 1).astype(np.float32),
            np.array([head.bias], np.float32),
        ]
    )


def rebuild_tflite(
    head: ModelHead,
    precision: str = PRECISION_FLOAT32,
    keras_path: Path | None = None,
    calibration_windows: npt.NDArray[np.float32] | None = None,
) -> bytes:
    """Return TFLite bytes of the Keras network (default: shipped) with ``head``.

    Args:
        head: the new output layer weights.
        precision: ``"float32"``, ``"int8"`` (int8 weights) or ``"int8-full"``.
        keras_path: the Keras network; ``None`` is the shipped one.
        calibration_windows: int8 calibration data; ``None`` is the shipped set.

    Raises:
        ModelFileError, ModelContractError: see ``load_keras``, ``apply_head``.
        ValueError: ``precision`` is not one of ``PRECISIONS``.
    """
    from .export import convert_to_tflite

    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, found {precision!r}")
    model = load_keras(keras_path)
    apply_head(model, head)
    if precision == PRECISION_INT8_FULL and calibration_windows is None:
        calibration_windows = load_calibration()
    return convert_to_tflite(model, precision, calibration_windows)


def rebuild_model(
    head: ModelHead,
    out_path: Path,
    version: str,
    base_metadata_path: Path | None = None,
    precision: str | None = None,
    keras_path: Path | None = None,
    calibration_windows: npt.NDArray[np.float32] | None = None,
) -> ModelMetadata:
    """Write ``out_path`` (.tflite) and its metadata JSON for a new head.

    The metadata is the base model's (default: the shipped model's) with the
    new ``version``, ``sha256``, ``size_bytes``, ``head``, ``precision`` and
    ``created_utc``; its evaluation figures are dropped (they were measured
    on the old head) and ``training.rebuilt_from`` names the base.

    Args:
        head: the new output layer weights.
        out_path: where the ``.tflite`` goes; the JSON goes beside it.
        version: version of the new model.
        base_metadata_path: metadata to start from; ``None`` is the shipped.
        precision: ``"float32"``, ``"int8"`` or ``"int8-full"``; ``None``
            keeps the base's.
        keras_path: the Keras network; ``None`` is the shipped one.
        calibration_windows: int8 calibration data; ``None`` is the shipped.

    Raises:
        ModelFileError: a base file is missing or unreadable.
        ModelContractError: the rebuilt model's probability differs from the
            NumPy head on its own embedding by more than ``HEAD_CHECK_ATOL``.
    """
    from .runtime import CrashModelRunner

    base_path = (
        Path(base_metadata_path)
        if base_metadata_path is not None
        else metadata_path_for(shipped_path(".tflite"))
    )
    base = load_metadata(base_path)
    precision = precision or base.precision
    flatbuffer = rebuild_tflite(head, precision, keras_path, calibration_windows)

    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    partial = out_path.with_suffix(".tflite.partial")
    partial.write_bytes(flatbuffer)
    _check_head(CrashModelRunner(partial), head, precision, calibration_windows)
    partial.replace(out_path)

    metadata = dataclasses.replace(
        base,
        version=version,
        sha256=file_sha256(out_path),
        size_bytes=len(flatbuffer),
        head=head.to_dict(),
        precision=precision,
        created_utc=datetime.now(UTC).isoformat(timespec="seconds"),
        evaluation={},
        validation={},
        training={
            **base.training,
            "rebuilt_from": {"name": base.name, "version": base.version},
        },
    )
    save_metadata(metadata, metadata_path_for(out_path))
    _LOGGER.info(
        "%s %s: rebuilt %s (%s, %d bytes) from %s with a new head",
        base.name,
        version,
        out_path,
        precision,
        len(flatbuffer),
        base_path,
    )
    return metadata


def _check_head(
    runner: Any,
    head: ModelHead,
    precision: str,
    windows: npt.NDArray[np.float32] | None,
) -> None:
    """Check the rebuilt model's probability is the head of its embedding."""
    if windows is None:
        try:
            windows = load_calibration()
        except ModelFileError:
            shape = (64, contract.WINDOW_SAMPLES, len(contract.INPUT_CHANNELS))
            windows = np.random.default_rng(0).normal(size=shape).astype(np.float32)
    outputs = runner.predict(np.asarray(windows[:256], dtype=np.float32))
    expected = head.probability(outputs.embedding)
    diff = float(np.max(np.abs(outputs.probability - expected), initial=0.0))
    if not diff <= HEAD_CHECK_ATOL[precision]:
        raise ModelContractError(
            f"{runner.model_path}: probability differs from the head applied to "
            f"the embedding by {diff:.3g} (allowed {HEAD_CHECK_ATOL[precision]})"
        )
