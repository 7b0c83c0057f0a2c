"""Background jobs: analytics for logs uploaded without them (archived data).

:class:`JobRunner` stores a job in the catalog and runs it in a thread
pool; :class:`StoredLogProcessor` is the work itself, shared with
``cloud-coordinator upload-archive``: the gateway's pipeline on a stored
file, its outputs uploaded, catalogued and announced.
"""

from .analytics import (
    AnalyticsOutcome,
    AnalyticsSource,
    StoredLogProcessor,
    server_process_options,
)
from .runner import ANALYTICS_JOB, DEFAULT_JOB_WORKERS, JobRequest, JobRunner

__all__ = [
    "ANALYTICS_JOB",
    "DEFAULT_JOB_WORKERS",
    "AnalyticsOutcome",
    "AnalyticsSource",
    "JobRequest",
    "JobRunner",
    "StoredLogProcessor",
    "server_process_options",
]
