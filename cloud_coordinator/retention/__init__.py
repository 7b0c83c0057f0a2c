"""Retention of raw data: announce deletions, delete expired raw objects.

See :mod:`.job` for the rules and :mod:`.cli` for ``cloud-coordinator
retention``.
"""

from .job import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_NOTICE_DAYS,
    RETENTION_ACTOR,
    RetentionJob,
    RetentionReport,
)

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "DEFAULT_NOTICE_DAYS",
    "RETENTION_ACTOR",
    "RetentionJob",
    "RetentionReport",
]
