"""A tiny contract-v1 crash model for tests, built with TensorFlow.

Its probability is a steep sigmoid of the window's largest acceleration
magnitude (``sigmoid(SLOPE * (peak_g - PEAK_G))``), so tests know which
windows it flags; its embedding is a fixed projection of the window. It is
converted to TFLite with a ``serving_default`` signature and described by a
``crash-model-metadata/1`` JSON, like an exported model.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from models import contract
from models.metadata import (
    SIGNATURE_KEY,
    DecisionRule,
    InputSpec,
    ModelMetadata,
    save_metadata,
)
from models.registry import file_sha256, metadata_path_for

__all__ = ["EMBEDDING_SIZE", "PEAK_G", "THRESHOLD", "build_tiny_model"]

PEAK_G = 5.0
SLOPE = 4.0
THRESHOLD = 0.5
EMBEDDING_SIZE = 8


def build_tiny_model(path: Path, min_run_windows: int = 1) -> Path:
    """Write the tiny model to ``path`` and its metadata beside it."""
    import tensorflow as tf

    projection = np.random.default_rng(7).normal(
        size=(len(contract.INPUT_CHANNELS), EMBEDDING_SIZE)
    )

    class Tiny(tf.Module):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            self.projection = tf.constant(projection, dtype=tf.float32)

        @tf.function(  # type: ignore[untyped-decorator]
            input_signature=[
                tf.TensorSpec(
                    [None, contract.WINDOW_SAMPLES, len(contract.INPUT_CHANNELS)],
                    tf.float32,
                    name=contract.INPUT_NAME,
                )
            ]
        )
        def serve(self, imu_window: tf.Tensor) -> dict[str, tf.Tensor]:
            acc = imu_window[:, :, :3]
            magnitude = tf.sqrt(tf.reduce_sum(acc * acc, axis=-1))
            peak = tf.reduce_max(magnitude, axis=1, keepdims=True)
            probability = tf.sigmoid(SLOPE * (peak - PEAK_G))
            embedding = tf.reduce_mean(
                tf.nn.relu(tf.einsum("bsc,ce->bse", imu_window, self.projection)),
                axis=1,
            )
            return {
                contract.OUTPUT_PROBABILITY: probability,
                contract.OUTPUT_EMBEDDING: embedding,
            }

    module = Tiny()
    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [module.serve.get_concrete_function()], module
    )
    flatbuffer = converter.convert()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(flatbuffer)
    metadata = ModelMetadata(
        name="crash-detector-tiny",
        version="test-1",
        contract_version=contract.CONTRACT_VERSION,
        sha256=file_sha256(path),
        size_bytes=len(flatbuffer),
        signature_key=SIGNATURE_KEY,
        input=InputSpec.contract_v1(),
        outputs={
            contract.OUTPUT_PROBABILITY: [-1, 1],
            contract.OUTPUT_EMBEDDING: [-1, EMBEDDING_SIZE],
        },
        decision=DecisionRule(THRESHOLD, min_run_windows),
        created_utc=datetime.now(UTC).isoformat(timespec="seconds"),
    )
    save_metadata(metadata, metadata_path_for(path))
    return path
