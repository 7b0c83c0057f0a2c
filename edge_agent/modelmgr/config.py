"""The ``[models]`` section of the gateway configuration (model updates).

::

    [models]
    enabled = true
    name = "crash-detector"
    repository_url = "store://models"   # the [store] backend's models bucket,
                                        # or "https://host/path/models"
    trusted_root = "/etc/edge-agent/tuf-root.json"   # provisioned root.json
    dir = "models"                      # under the workdir: TUF cache, slots
    check_interval_s = 3600.0           # periodic check besides announcements
    held_out_file = ""                  # local held-out windows (.npz)

Relative paths are taken from the gateway's workdir.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ModelUpdateConfig"]


@dataclass(frozen=True)
class ModelUpdateConfig:
    """Where the gateway gets signed models and how often it looks."""

    enabled: bool = False
    name: str = "crash-detector"
    # "store://<bucket>" reads through the [store] backend; http(s) URLs are
    # the bucket's base URL (metadata/ and targets/ below it).
    repository_url: str = "store://models"
    # The root.json the gateway trusts first; later roots are verified
    # against it and cached.
    trusted_root: str = ""
    dir: str = "models"
    # An hour: announcements bring news at once; the periodic check covers
    # a missed announcement and refreshes the cached timestamp.
    check_interval_s: float = 3600.0
    held_out_file: str = ""
