"""The crash model's head: the last layer, Dense(1, sigmoid) on the embedding.

``crash_probability = sigmoid(embedding @ kernel + bias)``. The head is what
federated training changes: a gateway fits new head weights in NumPy on the
embeddings the TFLite model computes for its own labelled windows, and the
cloud averages them and rebuilds a full TFLite model from the shipped Keras
network with the new head (``models.rebuild``, TensorFlow side).

The weights travel in the model's metadata JSON::

    "head": {"kernel": [k floats], "bias": float}

where ``k`` is the embedding size (``outputs.embedding[-1]``, at most 64).
NumPy only: the gateway imports this without TensorFlow. Errors:
``ModelMetadataError`` (missing or malformed ``head`` section, naming the file
and field) and ``ValueError`` (embeddings of the wrong shape).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from . import contract
from .errors import ModelMetadataError
from .metadata import ModelMetadata, load_metadata

__all__ = ["HEAD_FIELD", "ModelHead", "head_from_metadata", "load_head"]

# Name of the metadata section that carries the head weights.
HEAD_FIELD = "head"


@dataclass(frozen=True)
class ModelHead:
    """Weights of the output layer: ``kernel`` (k,) float32 and ``bias``."""

    kernel: npt.NDArray[np.float32]
    bias: float

    def __post_init__(self) -> None:
        kernel = np.asarray(self.kernel, dtype=np.float32)
        if kernel.ndim != 1 or not 1 <= len(kernel) <= contract.EMBEDDING_MAX_SIZE:
            raise ValueError(
                f"head kernel must be 1-D with 1..{contract.EMBEDDING_MAX_SIZE} "
                f"values, found shape {kernel.shape}"
            )
        if not (np.all(np.isfinite(kernel)) and math.isfinite(self.bias)):
            raise ValueError("head kernel and bias must be finite")
        object.__setattr__(self, "kernel", kernel)
        object.__setattr__(self, "bias", float(self.bias))

    @property
    def embedding_dim(self) -> int:
        """Return the embedding length the head reads (k)."""
        return len(self.kernel)

    def logit(self, embeddings: npt.ArrayLike) -> npt.NDArray[np.float32]:
        """Return ``embedding @ kernel + bias`` for (n, k) embeddings, shape (n,).

        Raises:
            ValueError: ``embeddings`` is not (n, k) or (k,).
        """
        e = np.asarray(embeddings, dtype=np.float32)
        if e.ndim == 1:
            e = e[None, :]
        if e.ndim != 2 or e.shape[1] != self.embedding_dim:
            raise ValueError(
                f"embeddings must have shape (n, {self.embedding_dim}), "
                f"found {np.shape(embeddings)}"
            )
        out: npt.NDArray[np.float32] = (e @ self.kernel + np.float32(self.bias)).astype(
            np.float32
        )
        return out

    def probability(self, embeddings: npt.ArrayLike) -> npt.NDArray[np.float32]:
        """Return the crash probability of (n, k) embeddings, shape (n,).

        Raises:
            ValueError: ``embeddings`` is not (n, k) or (k,).
        """
        z = self.logit(embeddings).astype(np.float64)
        # Split by sign so exp never overflows for large |z|.
        out = np.empty_like(z)
        pos = z >= 0
        out[pos] = 1.0 / (1.0 + np.exp(-z[pos]))
        ez = np.exp(z[~pos])
        out[~pos] = ez / (1.0 + ez)
        return out.astype(np.float32)

    def to_dict(self) -> dict[str, Any]:
        """Return the metadata ``head`` section."""
        return {"kernel": [float(v) for v in self.kernel], "bias": float(self.bias)}

    @classmethod
    def from_dict(cls, data: object, source: str) -> ModelHead:
        """Parse a metadata ``head`` section, naming ``source`` in errors.

        Raises:
            ModelMetadataError: the section or a field is missing or mistyped.
        """
        if not isinstance(data, dict):
            raise ModelMetadataError(
                f"{source}: field '{HEAD_FIELD}': expected an object with kernel "
                f"and bias, found {type(data).__name__}"
            )
        kernel = data.get("kernel")
        bias = data.get("bias")
        if not isinstance(kernel, list) or not all(
            isinstance(v, int | float) and not isinstance(v, bool) for v in kernel
        ):
            raise ModelMetadataError(
                f"{source}: field '{HEAD_FIELD}.kernel': expected a list of "
                f"numbers, found {kernel!r:.80}"
            )
        if not isinstance(bias, int | float) or isinstance(bias, bool):
            raise ModelMetadataError(
                f"{source}: field '{HEAD_FIELD}.bias': expected a number, "
                f"found {bias!r}"
            )
        try:
            return cls(np.asarray(kernel, dtype=np.float32), float(bias))
        except ValueError as exc:
            raise ModelMetadataError(f"{source}: field '{HEAD_FIELD}': {exc}") from exc


def head_from_metadata(metadata: ModelMetadata, source: str = "metadata") -> ModelHead:
    """Return the head a model's metadata carries.

    Raises:
        ModelMetadataError: the metadata has no ``head`` section, it is
            malformed, or its length differs from the embedding output's.
    """
    if metadata.head is None:
        raise ModelMetadataError(
            f"{source}: field '{HEAD_FIELD}' is missing; the model was exported "
            "before heads were recorded. Re-export it with crash-model export."
        )
    head = ModelHead.from_dict(metadata.head, source)
    if head.embedding_dim != metadata.embedding_size:
        raise ModelMetadataError(
            f"{source}: field '{HEAD_FIELD}.kernel': {head.embedding_dim} values, "
            f"but outputs.embedding has {metadata.embedding_size}"
        )
    return head


def load_head(metadata_path: Path) -> ModelHead:
    """Read the head from a model's metadata JSON file.

    Raises:
        ModelFileError: the file cannot be read.
        ModelMetadataError: it is malformed or has no valid ``head``.
    """
    return head_from_metadata(load_metadata(Path(metadata_path)), str(metadata_path))
