"""Convert a trained Keras crash model to TFLite and write its metadata.

Conversion goes through a SavedModel written by ``keras.export.ExportArchive``
with one endpoint, ``serving_default``, whose input is ``imu_window`` with a
free batch dimension. (Converting a ``tf.function`` over the Keras model
directly leaves the weights as uninitialised resource variables in the
flatbuffer, and the model then outputs NaN.) The result is float32, batch
dimension -1, and the signature keeps the contract's output names; the output
*tensors* are called ``StatefulPartitionedCall:n``, so runtimes look outputs
up through the signature (see ``runtime``).

Every export is checked with the LiteRT interpreter before it is kept: resized
to a batch of 64, its outputs must match Keras within ``MATCH_ATOL`` on real
validation windows. The metadata JSON beside the model carries the SHA-256 of
the bytes written, so a later edit of either file is detected on load.

Errors: ``ModelContractError`` when the converted model fails the check.
"""

from __future__ import annotations

import json
import logging
import platform
import tempfile
from datetime import UTC, datetime
from importlib import metadata as package_metadata
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from . import contract
from .errors import ModelContractError, ModelFileError
from .metadata import (
    PRECISION_FLOAT32,
    PRECISION_INT8,
    PRECISION_INT8_FULL,
    PRECISIONS,
    SIGNATURE_KEY,
    DecisionRule,
    InputSpec,
    ModelMetadata,
    save_metadata,
)
from .network import FEATURE_CHANNELS
from .registry import file_sha256, metadata_path_for
from .runtime import CrashModelRunner

__all__ = [
    "INT8_AGREEMENT_ATOL",
    "INT8_MIN_AGREEMENT",
    "MATCH_ATOL",
    "MODEL_NAME",
    "VERIFY_BATCH_WINDOWS",
    "convert_to_tflite",
    "export_run",
    "normalisation_of",
    "software_versions",
    "verify_against_keras",
    "verify_int8_against_keras",
]

_LOGGER = logging.getLogger(__name__)

MODEL_NAME = "crash-detector"
# float32 TFLite kernels (XNNPACK) sum in another order than TensorFlow's;
# 1e-4 is far above that round-off and far below any change of decision.
MATCH_ATOL = 1e-4
# The batch the gateway runs by default; the check resizes to it.
VERIFY_BATCH_WINDOWS = 64
# int8 vs float: the agreement target (probability within 0.02); the
# export check on a few hundred windows accepts a model when 99 % agree (the
# 99.9 % target is measured on the held-out set by ``crash-model evaluate``).
INT8_AGREEMENT_ATOL = 0.02
INT8_MIN_AGREEMENT = 0.99
# Calibration windows go through the converter this many at a time.
_CALIBRATION_BATCH = 32
_PACKAGES = ("numpy", "tensorflow-cpu", "keras", "ai-edge-litert", "suitlink")


def software_versions() -> dict[str, str]:
    """Return the versions of Python and the packages that made a model."""
    versions = {"python": platform.python_version()}
    for package in _PACKAGES:
        try:
            versions[package] = package_metadata.version(package)
        except package_metadata.PackageNotFoundError:
            versions[package] = "absent"
    return versions


def convert_to_tflite(
    model: Any,
    precision: str = PRECISION_FLOAT32,
    representative_windows: npt.NDArray[np.float32] | None = None,
) -> bytes:
    """Return the TFLite flatbuffer of a Keras crash model.

    Args:
        model: the Keras model (outputs named per the contract).
        precision: ``"float32"``, ``"int8"`` (int8 weights) or ``"int8-full"``
            (full integer, needs ``representative_windows``).
        representative_windows: (n, 200, 6) training windows that calibrate
            a full-integer model.

    Raises:
        ValueError: an unknown precision, or int8-full without windows.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, found {precision!r}")
    if precision == PRECISION_INT8_FULL and representative_windows is None:
        raise ValueError("an int8-full model needs representative windows")
    import keras
    import tensorflow as tf

    spec = tf.TensorSpec(
        [None, contract.WINDOW_SAMPLES, len(contract.INPUT_CHANNELS)],
        tf.float32,
        name=contract.INPUT_NAME,
    )

    def serve(imu_window: Any) -> dict[str, Any]:
        outputs = model(imu_window, training=False)
        return {
            contract.OUTPUT_PROBABILITY: outputs[contract.OUTPUT_PROBABILITY],
            contract.OUTPUT_EMBEDDING: outputs[contract.OUTPUT_EMBEDDING],
        }

    with tempfile.TemporaryDirectory(prefix="crash-export-") as tmp:
        archive = keras.export.ExportArchive()
        archive.track(model)
        archive.add_endpoint(SIGNATURE_KEY, serve, input_signature=[spec])
        archive.write_out(tmp, verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(tmp)
        if precision == PRECISION_FLOAT32:
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        elif precision == PRECISION_INT8:
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        else:
            calibration = np.asarray(representative_windows, dtype=np.float32)

            def samples() -> Any:
                for start in range(0, len(calibration), _CALIBRATION_BATCH):
                    yield [calibration[start : start + _CALIBRATION_BATCH]]

            converter.optimizations = [tf.lite.Optimize.DEFAULT]
            converter.representative_dataset = samples
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
            converter.inference_input_type = tf.int8
            converter.inference_output_type = tf.int8
        flatbuffer: bytes = converter.convert()
    return flatbuffer


def verify_against_keras(
    model: Any, tflite_path: Path, windows: npt.NDArray[np.float32]
) -> float:
    """Check the TFLite model against Keras on ``windows``; return max |diff|.

    The interpreter is resized to ``VERIFY_BATCH_WINDOWS``; both outputs of
    every window must agree within ``MATCH_ATOL``.

    Raises:
        ModelContractError: outputs differ, or the resize fails.
    """
    runner = CrashModelRunner(tflite_path, batch_windows=VERIFY_BATCH_WINDOWS)
    lite = runner.predict(windows)
    reference = model.predict(windows, batch_size=VERIFY_BATCH_WINDOWS, verbose=0)
    ref_p = np.asarray(reference[contract.OUTPUT_PROBABILITY])[:, 0]
    ref_e = np.asarray(reference[contract.OUTPUT_EMBEDDING])
    diff = max(
        float(np.max(np.abs(lite.probability - ref_p))),
        float(np.max(np.abs(lite.embedding - ref_e))),
    )
    if not diff <= MATCH_ATOL:
        raise ModelContractError(
            f"{tflite_path}: TFLite outputs differ from Keras by {diff:.3g} "
            f"(allowed {MATCH_ATOL}) on {len(windows)} windows"
        )
    return diff


def verify_int8_against_keras(
    model: Any, tflite_path: Path, windows: npt.NDArray[np.float32]
) -> dict[str, float]:
    """Check an int8 model's probability against Keras; return agreement figures.

    Raises:
        ModelContractError: fewer than ``INT8_MIN_AGREEMENT`` of the windows
            agree within ``INT8_AGREEMENT_ATOL``.
    """
    runner = CrashModelRunner(tflite_path, batch_windows=VERIFY_BATCH_WINDOWS)
    lite = runner.predict(windows).probability
    reference = model.predict(windows, batch_size=VERIFY_BATCH_WINDOWS, verbose=0)
    ref_p = np.asarray(reference[contract.OUTPUT_PROBABILITY])[:, 0]
    diff = np.abs(lite - ref_p)
    agreement = float(np.mean(diff <= INT8_AGREEMENT_ATOL))
    if agreement < INT8_MIN_AGREEMENT:
        raise ModelContractError(
            f"{tflite_path}: int8 probability within {INT8_AGREEMENT_ATOL} of "
            f"Keras on {agreement:.1%} of {len(windows)} windows "
            f"(need {INT8_MIN_AGREEMENT:.0%})"
        )
    return {
        "agreement_within_atol": agreement,
        "atol": INT8_AGREEMENT_ATOL,
        "max_abs_diff_vs_keras": float(diff.max(initial=0.0)),
    }


def normalisation_of(model: Any) -> dict[str, Any]:
    """Return the per-channel mean and std the model's first layer applies."""
    layer = model.get_layer("normalise")
    mean = np.asarray(layer.mean, np.float64).reshape(-1)
    variance = np.asarray(layer.variance, np.float64).reshape(-1)
    return {
        "inside_model": True,
        "channels": list(FEATURE_CHANNELS),
        "mean": [round(float(v), 6) for v in mean],
        "std": [round(float(v), 6) for v in np.sqrt(variance)],
    }


def export_run(
    run_dir: Path,
    out_path: Path,
    version: str,
    precision: str = PRECISION_FLOAT32,
    evaluation: dict[str, Any] | None = None,
    with_sources: bool = True,
) -> ModelMetadata:
    """Export the model a ``crash-model train`` run left in ``run_dir``.

    Reads ``run_dir/model.keras``, ``run.json`` (decision rule, validation
    figures, training facts), ``check_windows.npy`` and, for int8,
    ``calibration.npz`` (training windows); writes ``out_path`` (``.tflite``)
    and its metadata JSON beside it. With ``with_sources`` the Keras network
    (``<stem>.keras``) and the calibration windows
    (``<stem>.calibration.npz``) are copied beside it too, so the model can be
    rebuilt with new head weights (``models.rebuild``).

    Args:
        run_dir: a ``crash-model train --out`` directory.
        out_path: the ``.tflite`` to write.
        version: the model version.
        precision: ``"float32"``, ``"int8"`` (int8 weights) or ``"int8-full"``.
        evaluation: held-out figures to record in the metadata.
        with_sources: also write ``.keras`` and ``.calibration.npz``.

    Raises:
        ModelFileError: a file of the run is missing.
        ModelContractError: the converted model fails the check against Keras.
    """
    import keras

    from .rebuild import CALIBRATION_KEY, head_from_keras, save_calibration

    run_dir = Path(run_dir)
    out_path = Path(out_path)
    try:
        run = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))
        check_windows = np.load(run_dir / "check_windows.npy")
        model = keras.saving.load_model(run_dir / "model.keras")
        calibration_path = run_dir / "calibration.npz"
        calibration = None
        full = precision == PRECISION_INT8_FULL
        if full or (with_sources and calibration_path.exists()):
            with np.load(calibration_path) as data:
                calibration = np.asarray(data[CALIBRATION_KEY], dtype=np.float32)
    except (OSError, ValueError, KeyError) as exc:
        raise ModelFileError(
            f"{run_dir}: not a complete training run (model.keras, run.json, "
            f"check_windows.npy, calibration.npz): {exc}"
        ) from exc
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, found {precision!r}")

    int8 = precision != PRECISION_FLOAT32
    flatbuffer = convert_to_tflite(model, precision, calibration)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    partial = out_path.with_suffix(".tflite.partial")
    partial.write_bytes(flatbuffer)
    check: dict[str, Any] = {
        "windows": len(check_windows),
        "batch_windows": VERIFY_BATCH_WINDOWS,
    }
    if int8:
        check.update(verify_int8_against_keras(model, partial, check_windows))
    else:
        check["max_abs_diff_vs_keras"] = verify_against_keras(
            model, partial, check_windows
        )
    partial.replace(out_path)
    if with_sources:
        model.save(out_path.with_suffix(".keras"))
        if calibration is not None:
            save_calibration(out_path.with_suffix(".calibration.npz"), calibration)

    embedding_size = int(model.get_layer(contract.OUTPUT_EMBEDDING).units)
    decision = run["decision"]
    metadata = ModelMetadata(
        name=MODEL_NAME,
        version=version,
        contract_version=contract.CONTRACT_VERSION,
        sha256=file_sha256(out_path),
        size_bytes=len(flatbuffer),
        signature_key=SIGNATURE_KEY,
        input=InputSpec.contract_v1(),
        outputs={
            contract.OUTPUT_PROBABILITY: [-1, 1],
            contract.OUTPUT_EMBEDDING: [-1, embedding_size],
        },
        decision=DecisionRule(
            threshold=float(decision["threshold"]),
            min_run_windows=int(decision["min_run_windows"]),
        ),
        created_utc=datetime.now(UTC).isoformat(timespec="seconds"),
        validation=run["validation"],
        training={**run["training"], "export_check": check},
        software=software_versions(),
        head=head_from_keras(model).to_dict(),
        precision=precision,
        normalisation=normalisation_of(model),
        evaluation=evaluation or {},
    )
    save_metadata(metadata, metadata_path_for(out_path))
    _LOGGER.info(
        "%s %s: exported %s (%s, %d bytes, check %s)",
        MODEL_NAME,
        version,
        out_path,
        precision,
        len(flatbuffer),
        check,
    )
    return metadata
