"""What the lifecycle routes need beyond the read API: broker link, job runner.

:class:`LifecycleServices` hangs off :class:`~.services.ApiServices`; the
defaults (no publisher, no job runner) serve every read route, store
verdicts without sending them, and answer 503 to job requests.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from edge_agent.upload import ObjectStore

from ..catalog import Catalog
from ..config import BrokerConfig, CoordinatorConfig
from ..crashes import CommandPublisher, LazyCommandPublisher

if TYPE_CHECKING:
    from ..jobs import JobRunner

__all__ = ["LifecycleServices", "build_lifecycle"]


@dataclass(frozen=True)
class LifecycleServices:
    """The broker publisher for crash verdicts and the background job runner."""

    broker: BrokerConfig = field(default_factory=BrokerConfig)
    publisher: CommandPublisher | None = None
    jobs: JobRunner | None = None


def build_lifecycle(
    config: CoordinatorConfig, catalog: Catalog, store: ObjectStore
) -> LifecycleServices:
    """Return the lifecycle services ``config`` asks for.

    The job runner's threads start with the first job and the broker link
    with the first verdict, so building them costs nothing at start-up.
    """
    from ..jobs import JobRunner

    scratch = config.path(config.jobs.scratch_dir)
    assert scratch is not None
    return LifecycleServices(
        broker=config.broker,
        publisher=LazyCommandPublisher.for_api(config)
        if config.crashes.publish_verdicts
        else None,
        jobs=JobRunner(
            catalog,
            store,
            config.buckets,
            scratch_dir=scratch / f"api-{os.getpid()}",
            workers=config.jobs.workers,
        ),
    )
