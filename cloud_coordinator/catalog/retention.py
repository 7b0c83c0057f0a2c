"""When raw data stops being downloadable: the retention policy.

Raw objects are kept a configurable number of days after they were
catalogued, unless a crash was detected in their log or the rider is a
professional user; analytics and crash objects carry no retention date
(metrics are kept forever, crash data until R&D releases it). The catalog
applies the policy when it indexes an object, so every caller gets the same
dates; the retention job deletes what has expired.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from .models import ObjectKind, ObjectRecord, UserType

__all__ = ["DEFAULT_RAW_RETENTION_DAYS", "RetentionPolicy"]

# The product keeps raw data 2-4 weeks; two weeks is the default, the short
# end, since storage of 41,000 riders' 50 MB logs adds up fast.
DEFAULT_RAW_RETENTION_DAYS = 14.0


@dataclass(frozen=True)
class RetentionPolicy:
    """How long raw objects stay available after they were catalogued."""

    raw_retention: dt.timedelta = dt.timedelta(days=DEFAULT_RAW_RETENTION_DAYS)

    def __post_init__(self) -> None:
        """Refuse a negative retention.

        Raises:
            ValueError: ``raw_retention`` is negative.
        """
        if self.raw_retention < dt.timedelta(0):
            raise ValueError(
                f"raw retention {self.raw_retention}: must not be negative"
            )

    def retention_until(
        self, record: ObjectRecord, created_at: dt.datetime
    ) -> dt.datetime | None:
        """Return until when ``record`` stays available (None: kept)."""
        if record.kind is not ObjectKind.RAW:
            return None
        if record.crash is True or record.user_type is UserType.PROFESSIONAL:
            return None
        return created_at + self.raw_retention
