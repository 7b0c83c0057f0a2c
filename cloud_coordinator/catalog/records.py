"""Build the record to index from a stored object's metadata.

The gateway writes every object with :class:`edge_agent.upload.ObjectMetadata`
(SHA-256, rider, suit, log, log time range, model version). Ingest and
reconciliation read it with a HEAD request and turn it into an
:class:`~.models.ObjectRecord` here, adding what the object itself does not
carry: the rider's user type and product, and the crash verdict.
"""

from __future__ import annotations

import datetime as dt

from edge_agent.upload import BucketNames, ObjectInfo, ObjectMetadata

from .errors import InvalidRecord
from .models import ObjectKind, ObjectRecord, Rider

__all__ = ["kind_for_bucket", "record_from_object"]


def kind_for_bucket(buckets: BucketNames, bucket: str) -> ObjectKind | None:
    """Return the kind of objects ``bucket`` holds (None: not catalogued)."""
    kinds = {
        buckets.raw: ObjectKind.RAW,
        buckets.analytics: ObjectKind.ANALYTICS,
        buckets.crash: ObjectKind.CRASH,
    }
    return kinds.get(bucket)


def _parse_time(where: str, name: str, value: str | None) -> dt.datetime | None:
    if value is None:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise InvalidRecord(
            f"{where}: metadata {name} {value!r} is not ISO 8601"
        ) from exc
    if parsed.tzinfo is None:
        raise InvalidRecord(f"{where}: metadata {name} {value!r} has no time zone")
    return parsed.astimezone(dt.UTC)


def record_from_object(
    info: ObjectInfo,
    buckets: BucketNames,
    *,
    rider: Rider | None = None,
    crash: bool | None = None,
) -> ObjectRecord:
    """Return the catalog record of a stored object from its HEAD response.

    Raises:
        InvalidRecord: the bucket is not a catalogued one, or the metadata
            lacks a required key or has a malformed value (the message names
            the object and the key).
    """
    where = f"object {info.bucket}/{info.key}"
    kind = kind_for_bucket(buckets, info.bucket)
    if kind is None:
        raise InvalidRecord(
            f"{where}: bucket {info.bucket!r} is not a raw, analytics or crash "
            f"bucket ({buckets.raw}, {buckets.analytics}, {buckets.crash})"
        )
    try:
        metadata = ObjectMetadata.from_s3(info.metadata)
    except ValueError as exc:
        raise InvalidRecord(f"{where}: {exc}") from exc
    if rider is not None and rider.rider_id != metadata.rider_id:
        raise InvalidRecord(
            f"{where}: metadata names rider {metadata.rider_id!r}, "
            f"expected {rider.rider_id!r}"
        )
    record = ObjectRecord(
        bucket=info.bucket,
        key=info.key,
        kind=kind,
        object_type=metadata.kind,
        rider_id=metadata.rider_id,
        suit_id=metadata.suit_id,
        log_id=metadata.log_id,
        sha256_hex=metadata.sha256_hex,
        size_bytes=info.size_bytes,
        user_type=None if rider is None else rider.user_type,
        product=None if rider is None else rider.product,
        log_start=_parse_time(where, "log-start-utc", metadata.log_start_utc),
        log_end=_parse_time(where, "log-end-utc", metadata.log_end_utc),
        crash=crash,
        model_version=metadata.model_version,
        software_version=metadata.software_version,
        sample_count=metadata.sample_count,
    )
    return record.validated()
