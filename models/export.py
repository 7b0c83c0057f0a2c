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
    SIGNATURE_KEY,
    DecisionRule,
    InputSpec,
    ModelMetadata,
    save_metadata,
)
from .registry import file_sha256, metadata_path_for
from .runtime import CrashModelRunner

__all__ = [
    "MATCH_ATOL",
    "MODEL_NAME",
    "VERIFY_BATCH_WINDOWS",
    "convert_to_tflite",
    "export_run",
    "software_versions",
    "verify_against_keras",
]

_LOGGER = logging.getLogger(__name__)

MODEL_NAME = "crash-detector"
# float32 TFLite kernels (XNNPACK) sum in another order than TensorFlow's;
# 1e-4 is far above that round-off and far below any change of decision.
MATCH_ATOL = 1e-4
# The batch the gateway runs by default; the check resizes to it.
VERIFY_BATCH_WINDOWS = 64
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


def convert_to_tflite(model: Any) -> bytes:
    """Return the float32 TFLite flatbuffer of a Keras crash model."""
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
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
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


def export_run(run_dir: Path, out_path: Path, version: str) -> ModelMetadata:
    """Export the model a ``crash-model train`` run left in ``run_dir``.

    Reads ``run_dir/model.keras``, ``run.json`` (decision rule, validation
    figures, training facts) and ``check_windows.npy``; writes ``out_path``
    (``.tflite``) and its metadata JSON beside it.

    Raises:
        ModelFileError: a file of the run is missing.
        ModelContractError: the converted model fails the check against Keras.
    """
    import keras

    run_dir = Path(run_dir)
    out_path = Path(out_path)
    try:
        run = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))
        check_windows = np.load(run_dir / "check_windows.npy")
        model = keras.saving.load_model(run_dir / "model.keras")
    except (OSError, ValueError) as exc:
        raise ModelFileError(
            f"{run_dir}: not a complete training run (model.keras, run.json, "
            f"check_windows.npy): {exc}"
        ) from exc

    flatbuffer = convert_to_tflite(model)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    partial = out_path.with_suffix(".tflite.partial")
    partial.write_bytes(flatbuffer)
    diff = verify_against_keras(model, partial, check_windows)
    partial.replace(out_path)

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
        training={
            **run["training"],
            "export_check": {
                "windows": len(check_windows),
                "batch_windows": VERIFY_BATCH_WINDOWS,
                "max_abs_diff_vs_keras": diff,
            },
        },
        software=software_versions(),
    )
    save_metadata(metadata, metadata_path_for(out_path))
    _LOGGER.info(
        "%s %s: exported %s (%d bytes, max |TFLite - Keras| %.2g)",
        MODEL_NAME,
        version,
        out_path,
        len(flatbuffer),
        diff,
    )
    return metadata
