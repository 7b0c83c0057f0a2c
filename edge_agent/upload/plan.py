"""Which objects a processed log becomes, and uploading them.

Output names the processing pipeline gives :meth:`CustodyBuffer.mark_processed`:

* ``raw_csv``: the processed SI-unit CSV (gzip) -> raw bucket;
* ``analytics``: the ride analytics JSON -> analytics bucket;
* ``crash_*`` (optional, for example ``crash_windows``): extra files of a log
  with a detected crash -> crash bucket under their file name.

When a crash was detected the CSV also goes to the crash bucket, where it is
kept until R&D releases it (the raw bucket's copy follows normal retention).
The object names returned (``raw_csv``, ``analytics``, ``crash_raw_csv``,
``crash_*``) map to ``bucket/key`` strings for ``mark_uploaded``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edge_agent.custody.record import LogRecord
from edge_agent.custody.states import LogState

from .layout import ObjectLayout, ObjectRef
from .metadata import ObjectMetadata
from .uploader import Uploader, content_type_for

__all__ = [
    "OUTPUT_ANALYTICS",
    "OUTPUT_CRASH_PREFIX",
    "OUTPUT_RAW_CSV",
    "PlannedObject",
    "plan_log_objects",
    "upload_log",
]

OUTPUT_RAW_CSV = "raw_csv"
OUTPUT_ANALYTICS = "analytics"
OUTPUT_CRASH_PREFIX = "crash_"


@dataclass(frozen=True)
class PlannedObject:
    """One file of a log and where it goes."""

    name: str
    ref: ObjectRef
    path: Path
    metadata: ObjectMetadata
    content_type: str


def _log_day(record: LogRecord, analytics: dict[str, Any]) -> dt.date:
    """Date of the ride: its wall-clock start, else when the gateway got it."""
    start = analytics.get("start_utc")
    if isinstance(start, str) and start:
        return dt.datetime.fromisoformat(start.replace("Z", "+00:00")).date()
    received = record.state_times.get(LogState.PULLED, record.created_at)
    return received.astimezone(dt.UTC).date()


def plan_log_objects(
    record: LogRecord, layout: ObjectLayout, *, software_version: str
) -> list[PlannedObject]:
    """Return the objects a processed log is uploaded as.

    Raises:
        ValueError: the log has no rider, no ``raw_csv`` or ``analytics``
            output, or an output without a recorded SHA-256.
    """
    if record.rider_id is None:
        raise ValueError(
            f"log {record.log_id!r} of suit {record.suit_serial}: no rider id; "
            "map the suit to a rider in the gateway configuration"
        )
    missing = {OUTPUT_RAW_CSV, OUTPUT_ANALYTICS} - set(record.outputs)
    if missing:
        raise ValueError(
            f"log {record.log_id!r}: outputs {sorted(missing)} missing, found "
            f"{sorted(record.outputs)}"
        )
    analytics = record.analytics or {}
    model = analytics.get("model") or {}
    rider, suit, log_id = record.rider_id, record.suit_serial, record.log_id

    def described(name: str, kind: str, ref: ObjectRef) -> PlannedObject:
        path = record.outputs[name]
        sample_count = analytics.get("samples")
        metadata = ObjectMetadata(
            sha256_hex=record.output_sha256[name],
            log_id=log_id,
            suit_id=suit,
            rider_id=rider,
            kind=kind,
            log_start_utc=analytics.get("start_utc"),
            log_end_utc=analytics.get("end_utc"),
            sample_count=None if sample_count is None else int(sample_count),
            software_version=str(analytics.get("software_version") or software_version),
            model_version=None if not model.get("version") else str(model["version"]),
        )
        return PlannedObject(kind, ref, path, metadata, content_type_for(path))

    day = _log_day(record, analytics)
    planned = [
        described(
            OUTPUT_RAW_CSV, OUTPUT_RAW_CSV, layout.raw_csv(rider, suit, day, log_id)
        ),
        described(
            OUTPUT_ANALYTICS, OUTPUT_ANALYTICS, layout.analytics(rider, suit, log_id)
        ),
    ]
    if record.crash_detected:
        csv = record.outputs[OUTPUT_RAW_CSV]
        planned.append(
            described(
                OUTPUT_RAW_CSV,
                OUTPUT_CRASH_PREFIX + OUTPUT_RAW_CSV,
                layout.crash(rider, suit, log_id, csv.name),
            )
        )
        for name in sorted(record.outputs):
            if name.startswith(OUTPUT_CRASH_PREFIX):
                path = record.outputs[name]
                planned.append(
                    described(name, name, layout.crash(rider, suit, log_id, path.name))
                )
    return planned


def upload_log(
    uploader: Uploader,
    record: LogRecord,
    layout: ObjectLayout,
    *,
    software_version: str,
) -> dict[str, str]:
    """Upload every object of a processed log; return name -> ``bucket/key``.

    Safe to call again after a failure or crash: finished objects are
    skipped and an interrupted multipart upload resumes.
    """
    keys = {}
    for planned in plan_log_objects(record, layout, software_version=software_version):
        uploader.upload_file(
            planned.ref,
            planned.path,
            planned.metadata,
            content_type=planned.content_type,
        )
        keys[planned.metadata.kind] = str(planned.ref)
    return keys
