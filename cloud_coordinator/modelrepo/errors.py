"""Errors of model publishing (TUF repository, gate, roll-out).

::

    ModelRepoError                 anything that stops a publication or roll-out
    +-- RepoKeyError               a role's key file is missing or unusable
    +-- RepoStateError             repository absent, not initialised, or its
    |                              metadata inconsistent (version, signature)
    +-- ModelBuildError            the TFLite model cannot be rebuilt from the
    |                              head weights (shape, conversion, check)
    +-- PublishRefused             the gate refused the candidate (worse than
    |                              the current model and not approved)
    +-- RolloutError               the roll-out state does not allow the action

Third-party errors (python-tuf, securesystemslib, cryptography, TensorFlow)
are mapped into this tree where they are caught, with ``raise ... from``;
object-store errors stay ``edge_agent.upload.StorageError``.
"""

from __future__ import annotations

__all__ = [
    "ModelBuildError",
    "ModelRepoError",
    "PublishRefused",
    "RepoKeyError",
    "RepoStateError",
    "RolloutError",
]


class ModelRepoError(Exception):
    """Base class of every model publishing error."""


class RepoKeyError(ModelRepoError):
    """A signing key file is missing, unreadable or not the role's key."""


class RepoStateError(ModelRepoError):
    """The TUF repository is missing, not initialised or inconsistent."""


class ModelBuildError(ModelRepoError):
    """The full model cannot be rebuilt from new head weights."""


class PublishRefused(ModelRepoError):
    """The publication gate refused the candidate model."""


class RolloutError(ModelRepoError):
    """The roll-out is in a state that does not allow the action."""
