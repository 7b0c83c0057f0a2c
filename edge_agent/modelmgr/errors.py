"""Errors of the gateway's model updates.

::

    ModelUpdateError               a new model was not installed
    +-- UpdateUnavailable          repository unreachable and nothing cached
    |                              that still verifies: try again later
    +-- UpdateRefused              the update was checked and refused; the
        |                          current model keeps running
        +-- UpdateVerificationError  TUF refused the metadata or a target:
        |                            bad signature, expired, rolled back,
        |                            hash or length mismatch
        +-- ShadowTestFailed         the new model missed a reference crash or
        |                            raised more local false alarms
        +-- ModelInstallError        the new model does not load or its files
                                     disagree (version, SHA-256, contract)

python-tuf and LiteRT errors are mapped into this tree in :mod:`.client` and
:mod:`.manager`, with ``raise ... from``.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "ModelInstallError",
    "ModelUpdateError",
    "ShadowTestFailed",
    "UpdateRefused",
    "UpdateUnavailable",
    "UpdateVerificationError",
]


class ModelUpdateError(Exception):
    """Base class of every model update error.

    ``version`` names the model version concerned when known; ``shadow``
    carries the shadow-test figures of a refused candidate.
    """

    def __init__(
        self,
        message: str,
        *,
        version: str | None = None,
        shadow: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.version = version
        self.shadow = dict(shadow or {})


class UpdateUnavailable(ModelUpdateError):
    """The repository cannot be reached and the cache cannot stand in."""


class UpdateRefused(ModelUpdateError):
    """An update was refused; the current model stays."""


class UpdateVerificationError(UpdateRefused):
    """TUF verification refused metadata or a target file."""


class ShadowTestFailed(UpdateRefused):
    """The candidate model failed the shadow test."""


class ModelInstallError(UpdateRefused):
    """The candidate model cannot be loaded or its files disagree."""
