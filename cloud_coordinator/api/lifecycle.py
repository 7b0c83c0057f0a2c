"""What the lifecycle routes need beyond the read API: broker link, job runner.

:class:`LifecycleServices` hangs off :class:`~.services.ApiServices`; the
defaults (no publisher, no job runner) serve every read route, store
verdicts without sending them, and answer 503 to job requests.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..config import BrokerConfig
from ..crashes import CommandPublisher

if TYPE_CHECKING:
    from ..jobs import JobRunner

__all__ = ["LifecycleServices"]


@dataclass(frozen=True)
class LifecycleServices:
    """The broker publisher for crash verdicts and the background job runner."""

    broker: BrokerConfig = field(default_factory=BrokerConfig)
    publisher: CommandPublisher | None = None
    jobs: JobRunner | None = None
