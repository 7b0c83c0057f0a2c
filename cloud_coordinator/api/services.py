"""What the API runs on: catalog, object store, token verifier, link signer.

:func:`~.app.create_app` takes an :class:`ApiServices`; tests build one
from real parts directly, the CLI builds one from the configuration file
(:mod:`cloud_coordinator.wiring`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from edge_agent.upload import BucketNames, ObjectStore

from ..auth import TokenVerifier
from ..catalog import Catalog
from ..catalog.sqlbase import utc_now
from .downloads import LocalPresigner, Presigner
from .lifecycle import LifecycleServices

if TYPE_CHECKING:
    from ..fl.service import FederatedService

__all__ = ["ANALYTICS_MAX_BYTES", "ApiServices", "ApiSettings"]

# Largest analytics document the API reads into memory; a ride's analytics
# are a few kB, so anything near this is not an analytics document.
ANALYTICS_MAX_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True)
class ApiSettings:
    """Tunables of the results API."""

    default_page_limit: int = 50
    max_page_limit: int = 500
    url_ttl_s: int = 300
    # External base URL for links the API serves itself ("" = as requested).
    public_url: str = ""
    # Bound on the readiness checks; a probe must answer quickly.
    ready_timeout_s: float = 3.0


@dataclass(frozen=True)
class ApiServices:
    """Everything a request handler needs."""

    catalog: Catalog
    store: ObjectStore
    verifier: TokenVerifier
    presigner: Presigner
    buckets: BucketNames = field(default_factory=BucketNames)
    settings: ApiSettings = field(default_factory=ApiSettings)
    clock: Callable[[], dt.datetime] = utc_now
    # Crash verdict publisher and job runner (none: stored only, 503 for jobs).
    lifecycle: LifecycleServices = field(default_factory=LifecycleServices)
    # Federated runs ([fl]); None: run routes answer 503, reports still work.
    federated: FederatedService | None = None

    @property
    def local_links(self) -> LocalPresigner | None:
        """Return the signer of links the API serves itself, if it is one."""
        return self.presigner if isinstance(self.presigner, LocalPresigner) else None
