"""The gateway's model manager: receive, verify, shadow-test and swap models.

:class:`ModelManager` keeps a gateway on the model version the signed
roll-out plan (:mod:`.rollout`) names for it: the TUF client
(:mod:`.client`, :mod:`.fetcher`) verifies metadata and targets, online or
from its cache; :mod:`.shadow` compares the candidate with the active model
on reference crashes (:mod:`.reference`) and local held-out windows;
:mod:`.slots` swaps atomically and keeps the previous model. No TensorFlow:
models run on LiteRT (``models.runtime``). :mod:`.errors` draws the
exception tree.
"""

from .client import RefreshResult, TufModelClient
from .config import ModelUpdateConfig
from .errors import (
    ModelInstallError,
    ModelUpdateError,
    ShadowTestFailed,
    UpdateRefused,
    UpdateUnavailable,
    UpdateVerificationError,
)
from .manager import ModelManager, UpdateOutcome, UpdateResult
from .reference import ReferenceCrashes, read_reference_crashes, write_reference_crashes
from .rollout import (
    ROLLOUT_SCHEMA,
    CanaryRule,
    ReleaseRef,
    RolloutPlan,
    Stage,
    parse_version,
    release_targets,
    rollout_target_path,
)
from .shadow import HeldOutWindows, ShadowResult, load_held_out, run_shadow_test
from .slots import ModelSlots, Slot

__all__ = [
    "ROLLOUT_SCHEMA",
    "CanaryRule",
    "HeldOutWindows",
    "ModelInstallError",
    "ModelManager",
    "ModelSlots",
    "ModelUpdateConfig",
    "ModelUpdateError",
    "ReferenceCrashes",
    "RefreshResult",
    "ReleaseRef",
    "RolloutPlan",
    "ShadowResult",
    "ShadowTestFailed",
    "Slot",
    "Stage",
    "TufModelClient",
    "UpdateOutcome",
    "UpdateRefused",
    "UpdateResult",
    "UpdateUnavailable",
    "UpdateVerificationError",
    "load_held_out",
    "parse_version",
    "read_reference_crashes",
    "release_targets",
    "rollout_target_path",
    "run_shadow_test",
    "write_reference_crashes",
]
