"""A model repository and gateways around it, for the TUF tests.

The repository is real (python-tuf metadata signed with fresh Ed25519 keys,
in a local-directory object store); gateways are real
``edge_agent.modelmgr.ModelManager`` instances with their own TUF caches.
New model versions are made without TensorFlow: the shipped ``.tflite``
under a new version in its metadata (same bytes, same SHA-256), which is a
legitimate publication as far as TUF and the gateway are concerned.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cloud_coordinator.modelrepo import (
    ExpiryPolicy,
    KeyRing,
    ModelPublisher,
    RolloutSettings,
    TufRepository,
    ValidationSet,
    generate_role_keys,
)
from edge_agent.modelmgr import ModelManager, TufModelClient
from edge_agent.upload import LocalDirStore, ObjectStore, ObjectStoreUnavailable
from models.metadata import load_metadata, save_metadata
from models.registry import shipped_model

BUCKET = "models"
MODEL = "crash-detector"
# Generous waits for what takes milliseconds on an idle machine.
WAIT_S = 60.0


def wait_until(
    predicate: Callable[[], bool], what: str, timeout_s: float = WAIT_S
) -> None:
    """Poll ``predicate`` until it holds; raise TimeoutError naming ``what``."""
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not reached within {timeout_s} s")
        time.sleep(0.05)


def model_files(folder: Path, version: str) -> tuple[Path, Path]:
    """Write the shipped model under ``version``; return (tflite, json)."""
    info = shipped_model()
    folder.mkdir(parents=True, exist_ok=True)
    model_path = folder / f"{MODEL}-{version}.tflite"
    model_path.write_bytes(info.path.read_bytes())
    metadata = dataclasses.replace(load_metadata(info.metadata_path), version=version)
    save_metadata(metadata, model_path.with_suffix(".json"))
    return model_path, model_path.with_suffix(".json")


class UnreachableStore(LocalDirStore):
    """A store whose reads fail as if the uplink were down."""

    def get_object(self, bucket: str, key: str) -> bytes:
        """Fail like an unreachable S3 endpoint."""
        raise ObjectStoreUnavailable(f"{self.name}: connection refused (test)")


@dataclass
class RepoWorld:
    """A repository, its publisher and a place for gateways."""

    root: Path
    store: LocalDirStore
    repo: TufRepository
    publisher: ModelPublisher
    trusted_root: Path

    def publish_version(self, version: str, *, approve: bool = False) -> None:
        """Publish the shipped model bytes as ``version``."""
        model_path, metadata_path = model_files(self.root / "made" / version, version)
        outcome = self.publisher.publish_model(
            model_path, metadata_path, approve=approve
        )
        assert outcome.published, outcome.gate.reasons

    def gateway(
        self,
        gateway_id: str,
        *,
        store: ObjectStore | None = None,
        **options: Any,
    ) -> ModelManager:
        """Return a gateway's model manager (its folder survives restarts)."""
        folder = self.root / "gateways" / gateway_id
        client = TufModelClient(
            folder / "tuf",
            f"store://{BUCKET}",
            trusted_root=self.trusted_root,
            store=store or self.store,
            label=f"gateway {gateway_id}",
        )
        return ModelManager(gateway_id, folder / "models", client, **options)


def make_world(
    root: Path,
    validation: ValidationSet,
    *,
    rollout: RolloutSettings | None = None,
    expiry: ExpiryPolicy | None = None,
    clock: Callable[[], dt.datetime] | None = None,
) -> RepoWorld:
    """Create keys, an initialised repository and a publisher under ``root``."""
    store = LocalDirStore(root / "store")
    generate_role_keys(root / "keys")
    repo = TufRepository(
        store,
        BUCKET,
        KeyRing(root / "keys"),
        expiry=expiry,
        clock=clock or (lambda: dt.datetime.now(dt.UTC)),
    )
    repo.initialise()
    trusted_root = root / "trusted-root.json"
    trusted_root.write_bytes(repo.root_bytes())
    publisher = ModelPublisher(
        repo, lambda: validation, model_name=MODEL, rollout=rollout
    )
    return RepoWorld(root, store, repo, publisher, trusted_root)
