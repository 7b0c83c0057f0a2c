"""Find crash models and their metadata, and check they can be trusted.

A model is a ``.tflite`` file with a JSON of the same stem beside it (see
``metadata``). Loading one verifies that the file's SHA-256 equals the one the
metadata declares and that the model speaks the contract version this code
builds windows for. The model shipped inside the package is found through
``importlib.resources``, so it works from a source checkout and from an
installed wheel alike.

This module is imported by the gateway: it uses the standard library and the
metadata module only, never TensorFlow or the LiteRT runtime. Errors are those
of ``models.errors``: ``ModelFileError``, ``ModelMetadataError``,
``ModelIntegrityError`` and ``ModelContractError``.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import logging
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from . import contract
from .errors import (
    ModelContractError,
    ModelFileError,
    ModelIntegrityError,
)
from .metadata import InputSpec, ModelMetadata, load_metadata

__all__ = [
    "SHIPPED_MODEL_FILE",
    "SHIPPED_MODEL_STEM",
    "ModelInfo",
    "file_sha256",
    "load_model_info",
    "metadata_path_for",
    "shipped_model",
    "shipped_path",
]

_LOGGER = logging.getLogger(__name__)

# The shipped model's files share this stem: ``.tflite`` (what gateways
# run), ``.json`` (its metadata, with the head), ``.keras`` (the network it
# was converted from, for rebuilding with new head weights) and
# ``.calibration.npz`` (training windows that calibrate an int8 rebuild).
SHIPPED_MODEL_STEM = "crash_v1"
SHIPPED_MODEL_FILE = SHIPPED_MODEL_STEM + ".tflite"
# Read in 1 MiB pieces: models are small, but the helper also hashes whatever
# path a caller hands it.
_HASH_CHUNK_BYTES = 1 << 20

# Keeps a resource extracted for the life of the process when the package is
# imported from a zip (a no-op for an ordinary directory install).
_RESOURCE_FILES = contextlib.ExitStack()
atexit.register(_RESOURCE_FILES.close)


@dataclass(frozen=True)
class ModelInfo:
    """A verified model file and what its metadata says about it."""

    path: Path
    metadata_path: Path
    metadata: ModelMetadata

    @property
    def name(self) -> str:
        """Return the model name (``crash-detector``)."""
        return self.metadata.name

    @property
    def version(self) -> str:
        """Return the model version string."""
        return self.metadata.version

    @property
    def sha256(self) -> str:
        """Return the verified SHA-256 of the ``.tflite`` bytes (hex)."""
        return self.metadata.sha256


def file_sha256(path: Path) -> str:
    """Return the hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as stream:
            while chunk := stream.read(_HASH_CHUNK_BYTES):
                digest.update(chunk)
    except OSError as exc:
        raise ModelFileError(f"{path}: cannot read model file: {exc}") from exc
    return digest.hexdigest()


def metadata_path_for(model_path: Path) -> Path:
    """Return where the metadata of ``model_path`` lives (same stem, ``.json``)."""
    return model_path.with_suffix(".json")


def load_model_info(model_path: Path, metadata_path: Path | None = None) -> ModelInfo:
    """Load a model's metadata and verify the model file against it.

    Args:
        model_path: the ``.tflite`` file.
        metadata_path: its JSON; defaults to the same stem with ``.json``.

    Raises:
        ModelFileError: either file is missing or unreadable.
        ModelMetadataError: the JSON is malformed.
        ModelIntegrityError: the file's SHA-256 differs from the metadata's.
        ModelContractError: the metadata declares another contract or input.
    """
    model_path = Path(model_path)
    metadata_path = metadata_path or metadata_path_for(model_path)
    metadata = load_metadata(metadata_path)

    actual = file_sha256(model_path)
    if actual != metadata.sha256:
        raise ModelIntegrityError(
            f"{model_path}: SHA-256 is {actual}, but {metadata_path} declares "
            f"{metadata.sha256}; the model file was altered or does not belong "
            "to this metadata. Reinstall the model or re-export it."
        )

    if metadata.contract_version != contract.CONTRACT_VERSION:
        raise ModelContractError(
            f"{metadata_path}: field 'contract_version': expected "
            f"{contract.CONTRACT_VERSION}, found {metadata.contract_version}"
        )
    expected = InputSpec.contract_v1()
    if metadata.input.shape != expected.shape or metadata.input.name != expected.name:
        raise ModelContractError(
            f"{metadata_path}: field 'input': expected {expected.name} "
            f"{expected.shape}, found {metadata.input.name} {metadata.input.shape}"
        )
    missing = {contract.OUTPUT_PROBABILITY, contract.OUTPUT_EMBEDDING} - set(
        metadata.outputs
    )
    if missing:
        raise ModelContractError(
            f"{metadata_path}: field 'outputs': missing {sorted(missing)}"
        )

    _LOGGER.debug(
        "%s %s: verified %s (%d bytes)",
        metadata.name,
        metadata.version,
        model_path,
        metadata.size_bytes,
    )
    return ModelInfo(model_path, metadata_path, metadata)


def _resource_path(name: str) -> Path:
    """Return a filesystem path of a file in ``models/shipped``."""
    resource = resources.files(__package__ or "models").joinpath("shipped", name)
    if isinstance(resource, Path):
        return resource
    return _RESOURCE_FILES.enter_context(resources.as_file(resource))


def shipped_path(suffix: str) -> Path:
    """Return the path of the shipped model's file with ``suffix``.

    ``shipped_path(".keras")`` is the Keras network, ``".tflite"`` the model,
    ``".json"`` its metadata, ``".calibration.npz"`` its calibration windows.
    The file may not exist; callers that open it report that.
    """
    return _resource_path(SHIPPED_MODEL_STEM + suffix)


def shipped_model() -> ModelInfo:
    """Return the model packaged with this software, verified.

    Raises:
        ModelFileError: the package lacks the model or its metadata.
        ModelIntegrityError: the packaged file does not match its metadata.
        ModelMetadataError, ModelContractError: see ``load_model_info``.
    """
    model_path = _resource_path(SHIPPED_MODEL_FILE)
    metadata_path = _resource_path(metadata_path_for(Path(SHIPPED_MODEL_FILE)).name)
    return load_model_info(model_path, metadata_path)
