"""Build the Flower App Bundle (FAB) of the federated crash-model app.

The FAB carries ``pyproject.toml`` (``[tool.flwr.app]``: the components and
the run-config defaults) and the README, nothing else: the ServerApp and
ClientApp modules are imported from the suitlink package installed on the
coordinator and on each gateway. A SuperNode therefore runs only code its
operator installed, never code shipped with a run; the price is that both
sides must run compatible suitlink versions (the message contract is
:mod:`edge_agent.fl.records`). A FAB holding package folders would also
shadow the installed packages (Flower puts the FAB folder first on
``sys.path``) and hide their data files, such as the shipped model.

``flwr build`` and ``flwr run`` walk the whole project folder, which here
holds caches far beyond what a FAB may contain, so the coordinator hands
Flower's own builder (``flwr.cli.build.build_fab_from_files``) the files
itself; Flower applies ``fab-include`` and validates the configuration.

Errors: :class:`~cloud_coordinator.fl.errors.RunConfigError` when the
project folder is not the app (no ``pyproject.toml`` with
``[tool.flwr.app]``) or Flower refuses the bundle.
"""

from __future__ import annotations

import hashlib
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import RunConfigError

__all__ = ["APP_FILES", "AppBundle", "build_app_bundle", "project_root"]

# What goes into the bundle (relative to the project root).
APP_FILES = ("pyproject.toml", "README.md")


@dataclass(frozen=True)
class AppBundle:
    """A built FAB and what identifies it."""

    content: bytes
    sha256: str
    fab_id: str
    fab_version: str


def project_root() -> Path:
    """Return the source checkout this package runs from (holds pyproject.toml)."""
    return Path(__file__).resolve().parents[2]


def _app_files(root: Path) -> dict[str, bytes | Path]:
    return {name: root / name for name in APP_FILES if (root / name).is_file()}


def build_app_bundle(root: Path | None = None) -> AppBundle:
    """Build the FAB from ``root`` (default: this checkout).

    Raises:
        RunConfigError: no app configuration there, or Flower refuses it.
    """
    from flwr.cli.build import build_fab_from_files
    from flwr.common.config import get_metadata_from_config

    root = project_root() if root is None else Path(root)
    pyproject = root / "pyproject.toml"
    try:
        config: dict[str, Any] = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise RunConfigError(f"{pyproject}: cannot read the app config: {exc}") from exc
    if "app" not in config.get("tool", {}).get("flwr", {}):
        raise RunConfigError(f"{pyproject}: no [tool.flwr.app] section")
    try:
        content, _ = build_fab_from_files(_app_files(root))
    except ValueError as exc:
        raise RunConfigError(f"{root}: Flower refuses the app bundle: {exc}") from exc
    fab_id, fab_version = get_metadata_from_config(config)
    return AppBundle(
        content=content,
        sha256=hashlib.sha256(content).hexdigest(),
        fab_id=fab_id,
        fab_version=fab_version,
    )
