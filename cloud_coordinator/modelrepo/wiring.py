"""Build the model repository and publisher from the ``[models]`` configuration.

:func:`publish_from_head` is the entry point for the federated server app:
it connects to the broker when ``[models] announce`` is on, publishes, and
disconnects again.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import numpy.typing as npt

from edge_agent.upload import ObjectStore

from ..catalog import Catalog
from ..config import CoordinatorConfig
from ..wiring import build_catalog, build_store
from .keys import KeyRing
from .publish import (
    Announcer,
    ModelPublisher,
    PublishOutcome,
    ReleaseRecords,
    RolloutSettings,
)
from .tufrepo import ExpiryPolicy, TufRepository
from .validation import ValidationSet, load_or_synthesise

if TYPE_CHECKING:
    from ..broker import CloudMqttClient

__all__ = [
    "build_publisher",
    "build_repository",
    "canary_gateways",
    "connect_announcer",
    "open_records",
    "publish_from_head",
]

_LOGGER = logging.getLogger(__name__)


def build_repository(
    config: CoordinatorConfig, store: ObjectStore | None = None
) -> TufRepository:
    """Return the TUF repository ``[models]`` names (no request made yet)."""
    models = config.models
    keys_dir = config.path(models.keys_dir)
    assert keys_dir is not None
    return TufRepository(
        store or build_store(config),
        models.bucket,
        KeyRing(keys_dir),
        expiry=ExpiryPolicy(
            root_s=models.root_expiry_s,
            targets_s=models.targets_expiry_s,
            snapshot_s=models.snapshot_expiry_s,
            timestamp_s=models.timestamp_expiry_s,
        ),
    )


def canary_gateways(config: CoordinatorConfig) -> tuple[str, ...]:
    """Return the configured canary gateway ids (comma-separated in TOML)."""
    text = config.models.canary_gateways
    return tuple(part.strip() for part in text.split(",") if part.strip())


@contextmanager
def open_records(config: CoordinatorConfig) -> Iterator[Catalog]:
    """Open and migrate the configured catalog for release records; close it.

    Raises:
        CatalogError: the catalog is unreachable or cannot be migrated.
    """
    catalog = build_catalog(config)
    try:
        catalog.migrate()
        yield catalog
    finally:
        catalog.close()


def build_publisher(
    config: CoordinatorConfig,
    *,
    store: ObjectStore | None = None,
    announcer: Announcer | None = None,
    records: ReleaseRecords | None = None,
) -> ModelPublisher:
    """Return a publisher on the configured repository and validation data."""
    models = config.models
    validation_file = config.path(models.validation_file)

    def validation() -> ValidationSet:
        return load_or_synthesise(
            validation_file, seed=models.validation_seed, rides=models.validation_rides
        )

    return ModelPublisher(
        build_repository(config, store),
        validation,
        model_name=models.name,
        announcer=announcer,
        models_prefix=config.broker.models_prefix,
        rollout=RolloutSettings(canary_gateways(config), models.canary_share),
        records=records,
    )


def publish_from_head(
    head_kernel: npt.ArrayLike,
    head_bias: npt.ArrayLike | float,
    *,
    config: CoordinatorConfig,
    base_model: Path | None = None,
    approve: bool = False,
    run_id: str | None = None,
    announcer: Announcer | None = None,
) -> PublishOutcome:
    """Rebuild, gate, publish and announce a model with new head weights.

    Args:
        head_kernel: (k,) or (k, 1) aggregated weights of the output layer.
        head_bias: its bias.
        config: the coordinator configuration (``[models]``, ``[store]``,
            ``[broker]``).
        base_model: Keras network to rebuild from; None: ``[models]
            base_keras``, else the shipped one.
        approve: publish even if the gate refuses (R&D's decision).
        run_id: the federated run the weights come from.
        announcer: an already connected MQTT client; None connects one from
            ``[broker]`` when ``[models] announce`` is on.

    The release and its roll-out step are recorded in the ``[catalog]``
    (migrated first if needed).

    Raises:
        ModelBuildError, RepoStateError, RepoKeyError, StorageError: see
            :meth:`ModelPublisher.publish_from_head`.
        CatalogError: the catalog cannot be opened or migrated.
    """
    if base_model is None and config.models.base_keras:
        base_model = config.path(config.models.base_keras)
    with ExitStack() as stack:
        if announcer is None and config.models.announce:
            announcer = connect_announcer(config)
            if announcer is not None:
                stack.callback(announcer.close)
        records = stack.enter_context(open_records(config))
        publisher = build_publisher(config, announcer=announcer, records=records)
        return publisher.publish_from_head(
            head_kernel,
            head_bias,
            base_model=base_model,
            approve=approve,
            run_id=run_id,
        )


def connect_announcer(config: CoordinatorConfig) -> CloudMqttClient | None:
    """Connect the broker client that announces models (None: unreachable).

    An unreachable broker does not stop a publication: gateways find new
    versions at their periodic check.
    """
    from ..broker import BrokerError, CloudMqttClient

    client = CloudMqttClient.from_config(
        config, client_id=f"{config.broker.client_id}-models"
    )
    try:
        client.connect()
    except BrokerError as exc:
        _LOGGER.error("models: broker unavailable, publishing unannounced: %s", exc)
        return None
    return client
