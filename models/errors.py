"""Errors of the crash-model boundary (files, metadata, runtime).

::

    ModelError                      anything wrong with a model or its use
    +-- ModelFileError              model or metadata file missing or unreadable
    +-- ModelMetadataError          metadata JSON malformed (names file and field)
    +-- ModelIntegrityError         .tflite bytes do not match the metadata sha256
    +-- ModelContractError          model's tensors do not match contract v1
    +-- DatasetError                training data cannot be built as asked

Third-party errors (``OSError``, ``json.JSONDecodeError``, ``ValueError`` and
``RuntimeError`` from the LiteRT interpreter) are mapped into this tree where
they are caught, with ``raise ... from``.
"""

from __future__ import annotations

__all__ = [
    "DatasetError",
    "ModelContractError",
    "ModelError",
    "ModelFileError",
    "ModelIntegrityError",
    "ModelMetadataError",
]


class ModelError(Exception):
    """Base class of every crash-model error."""


class ModelFileError(ModelError):
    """A model or metadata file is missing or cannot be read."""


class ModelMetadataError(ModelError):
    """A metadata file is malformed; the message names the file and field."""


class ModelIntegrityError(ModelError):
    """A model file's SHA-256 differs from the one its metadata declares."""


class ModelContractError(ModelError):
    """A model's input or outputs do not match the model contract."""


class DatasetError(ModelError):
    """A training or evaluation dataset cannot be built as asked."""
