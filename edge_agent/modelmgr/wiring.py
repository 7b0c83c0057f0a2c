"""Build a gateway's model manager from its ``[models]`` configuration."""

from __future__ import annotations

from pathlib import Path

from edge_agent.config import GatewayConfig
from edge_agent.upload import ObjectStore

from .client import TufModelClient
from .fetcher import STORE_SCHEME
from .manager import ModelManager

__all__ = ["build_model_manager"]

TUF_CACHE_DIR = "tuf"


def _path(config: GatewayConfig, value: str) -> Path | None:
    if not value:
        return None
    path = Path(value).expanduser()
    return path if path.is_absolute() else config.workdir / path


def build_model_manager(config: GatewayConfig, store: ObjectStore) -> ModelManager:
    """Return the model manager ``[models]`` describes (not started).

    ``store`` serves ``store://`` repository URLs (the gateway's own object
    store backend and credentials).
    """
    models = config.models
    root = _path(config, models.dir)
    assert root is not None
    client = TufModelClient(
        root / TUF_CACHE_DIR,
        models.repository_url,
        trusted_root=_path(config, models.trusted_root),
        store=store if models.repository_url.startswith(STORE_SCHEME) else None,
        label=f"gateway {config.gateway_id}",
    )
    return ModelManager(
        config.gateway_id,
        root,
        client,
        model_name=models.name,
        held_out=ModelManager.held_out_file(_path(config, models.held_out_file)),
        check_interval_s=models.check_interval_s,
    )
