"""Model publishing: a TUF repository of crash models in the models bucket.

:mod:`.publish` rebuilds a model from federated head weights, gates it on
the validation rides (:mod:`.validation`), signs it into the repository
(:mod:`.tufrepo`, keys from :mod:`.keys`) and announces it; :mod:`.canary`
promotes a staged roll-out once the canary gateways report healthy;
:mod:`.errors` draws the exception tree. :func:`publish_from_head`
(:mod:`.wiring`) does all of it from the coordinator configuration.
"""

from .errors import (
    ModelBuildError,
    ModelRepoError,
    PublishRefused,
    RepoKeyError,
    RepoStateError,
    RolloutError,
)
from .keys import ROLES, KeyRing, generate_role_keys
from .publish import (
    ANNOUNCE_SCHEMA,
    Announcer,
    ModelPublisher,
    PublishOutcome,
    RolloutSettings,
    announce_topic,
)
from .tufrepo import ExpiryPolicy, RepoStatus, TufRepository, target_object_key
from .validation import (
    GateDecision,
    ModelScore,
    ValidationSet,
    gate,
    load_or_synthesise,
    pick_reference_crashes,
    score_model,
)
from .wiring import (
    build_publisher,
    build_repository,
    connect_announcer,
    open_records,
    publish_from_head,
)

__all__ = [
    "ANNOUNCE_SCHEMA",
    "ROLES",
    "Announcer",
    "ExpiryPolicy",
    "GateDecision",
    "KeyRing",
    "ModelBuildError",
    "ModelPublisher",
    "ModelRepoError",
    "ModelScore",
    "PublishOutcome",
    "PublishRefused",
    "RepoKeyError",
    "RepoStateError",
    "RepoStatus",
    "RolloutError",
    "RolloutSettings",
    "TufRepository",
    "ValidationSet",
    "announce_topic",
    "build_publisher",
    "build_repository",
    "connect_announcer",
    "gate",
    "generate_role_keys",
    "load_or_synthesise",
    "open_records",
    "pick_reference_crashes",
    "publish_from_head",
    "score_model",
    "target_object_key",
]
