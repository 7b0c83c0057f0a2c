"""Where each object goes: buckets and deterministic keys.

Default layout (bucket names configurable)::

    raw/{rider_id}/{suit_id}/{yyyy}/{mm}/{dd}/{log_id}.csv.gz
    analytics/{rider_id}/{suit_id}/{log_id}.json
    crash/{rider_id}/{suit_id}/{log_id}/{name}
    archive/{rider_id}/{suit_id}/{upload_id}/{original file name}

The first path segment is the bucket. Keys depend only on the ids and the
log's date, so a retried upload lands on the same key and is idempotent.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from .errors import InvalidObjectKey

__all__ = ["BucketNames", "ObjectLayout", "ObjectRef", "check_key_segment"]

# Longest id segment accepted in a key; S3 keys are limited to 1024 bytes.
MAX_SEGMENT_CHARS = 200


@dataclass(frozen=True)
class BucketNames:
    """Bucket names of each kind of object."""

    raw: str = "raw"
    analytics: str = "analytics"
    crash: str = "crash"
    archive: str = "archive"


@dataclass(frozen=True)
class ObjectRef:
    """A bucket and a key."""

    bucket: str
    key: str

    def __str__(self) -> str:
        return f"{self.bucket}/{self.key}"


def check_key_segment(field_name: str, value: str) -> str:
    """Return ``value`` if it can be a key segment; raise InvalidObjectKey if not."""
    if (
        not value
        or value in (".", "..")
        or "/" in value
        or "\\" in value
        or len(value) > MAX_SEGMENT_CHARS
        or any(ord(char) < 0x20 or ord(char) == 0x7F for char in value)
    ):
        raise InvalidObjectKey(
            f"object key: {field_name} {value!r} cannot be a key segment "
            f"(1-{MAX_SEGMENT_CHARS} characters, no '/', '\\\\', control "
            "characters, '.' or '..')"
        )
    return value


class ObjectLayout:
    """Build the key of every kind of object from ids."""

    def __init__(self, buckets: BucketNames | None = None) -> None:
        """Use ``buckets`` (the defaults when None)."""
        self.buckets = buckets or BucketNames()

    def raw_csv(
        self, rider_id: str, suit_id: str, log_day: dt.date, log_id: str
    ) -> ObjectRef:
        """Return where a log's processed CSV (gzip) goes."""
        key = "/".join(
            (
                check_key_segment("rider_id", rider_id),
                check_key_segment("suit_id", suit_id),
                f"{log_day.year:04d}",
                f"{log_day.month:02d}",
                f"{log_day.day:02d}",
                check_key_segment("log_id", log_id) + ".csv.gz",
            )
        )
        return ObjectRef(self.buckets.raw, key)

    def analytics(self, rider_id: str, suit_id: str, log_id: str) -> ObjectRef:
        """Return where a log's ride analytics JSON goes."""
        key = "/".join(
            (
                check_key_segment("rider_id", rider_id),
                check_key_segment("suit_id", suit_id),
                check_key_segment("log_id", log_id) + ".json",
            )
        )
        return ObjectRef(self.buckets.analytics, key)

    def crash(self, rider_id: str, suit_id: str, log_id: str, name: str) -> ObjectRef:
        """Return where a file of a log with a detected crash goes."""
        key = "/".join(
            (
                check_key_segment("rider_id", rider_id),
                check_key_segment("suit_id", suit_id),
                check_key_segment("log_id", log_id),
                check_key_segment("name", name),
            )
        )
        return ObjectRef(self.buckets.crash, key)

    def crash_prefix(self, rider_id: str, suit_id: str, log_id: str) -> ObjectRef:
        """Return the prefix under which every crash file of a log lives."""
        key = "/".join(
            (
                check_key_segment("rider_id", rider_id),
                check_key_segment("suit_id", suit_id),
                check_key_segment("log_id", log_id),
            )
        )
        return ObjectRef(self.buckets.crash, key + "/")

    def archive(
        self, rider_id: str, suit_id: str, upload_id: str, original_name: str
    ) -> ObjectRef:
        """Return where an archived on-premise file goes, under its own name."""
        key = "/".join(
            (
                check_key_segment("rider_id", rider_id),
                check_key_segment("suit_id", suit_id),
                check_key_segment("upload_id", upload_id),
                check_key_segment("original_name", original_name),
            )
        )
        return ObjectRef(self.buckets.archive, key)
