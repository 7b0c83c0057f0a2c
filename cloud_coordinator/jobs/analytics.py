"""Process a stored or on-premise file with the gateway's own pipeline.

Used by analytics jobs (a log uploaded without analytics: an archived file,
or a raw CSV) and by ``cloud-coordinator upload-archive``. The file goes
through :func:`edge_agent.ingest.ingest_file`, the code ``edge-agent
ingest`` runs on a gateway (suit logs by their magic, CSV exports with unit
options), so the cloud computes exactly what a gateway would. Then:

* the analytics JSON goes to ``analytics/{rider}/{suit}/{log_id}.json``;
* for an archive file, its processed CSV goes to
  ``raw/{rider}/{suit}/{yyyy}/{mm}/{dd}/{log_id}.csv.gz`` (a raw source
  keeps its CSV: the job reads it and writes analytics only);
* with a detected crash, the CSV also goes to the crash bucket, as the
  gateway does, and a raw object of the log learns its crash flag;
* every object written is catalogued from a HEAD of the stored object
  (SHA-256 and provenance metadata, as ingest does), then
  ``analytics_ready`` (and ``crash_detected``) notifications are recorded
  with ids derived from the log, so running again announces nothing new.

Uploads go through :class:`edge_agent.upload.Uploader`: idempotent keys,
multipart with a journal for big CSVs, verified after the upload.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import gzip
import logging
import shutil
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edge_agent.custody.durable import sha256_file
from edge_agent.ingest import UnitOptions, ingest_file
from edge_agent.processing import CrashDetector, ProcessOptions, ProcessResult
from edge_agent.upload import (
    BucketNames,
    ObjectLayout,
    ObjectMetadata,
    ObjectRef,
    ObjectStore,
    Uploader,
    content_type_for,
)

from ..catalog import (
    Catalog,
    CatalogObject,
    ObjectKind,
    ObjectRecord,
    check_identifier,
    record_from_object,
)
from ..catalog.sqlbase import utc_now
from ..notify import NotificationType, notification_id_for, record_notification

__all__ = [
    "AnalyticsOutcome",
    "AnalyticsSource",
    "StoredLogProcessor",
    "server_process_options",
]

_LOGGER = logging.getLogger(__name__)

# Bytes copied per read when unpacking a gzip source.
_COPY_BYTES = 1024 * 1024


def server_process_options() -> ProcessOptions:
    """Return the pipeline options of the cloud: scratch output, no fsync.

    Outputs are uploaded and then deleted, so durability on the scratch
    disk buys nothing; everything else (gzip level, chunking) is the
    gateway's default, so the bytes match what a gateway would write.
    """
    return ProcessOptions(fsync=False)


@dataclass(frozen=True)
class AnalyticsSource:
    """A stored file to process and whose data it is.

    ``log_id`` names the outputs (None: the suit log's own id, or for a CSV
    the first 32 hex digits of its SHA-256, as ``edge-agent ingest`` does).
    ``write_raw`` uploads the processed CSV to the raw bucket (archive
    files); a raw source keeps its own CSV.
    """

    bucket: str
    key: str
    rider_id: str
    suit_id: str
    log_id: str | None = None
    write_raw: bool = True

    @property
    def file_name(self) -> str:
        """Return the last segment of the key."""
        return self.key.rsplit("/", 1)[-1]


@dataclass
class AnalyticsOutcome:
    """What processing one file produced, and the server-side seconds."""

    log_id: str
    crash_detected: bool | None
    samples: int
    objects: dict[str, CatalogObject] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """Return a JSON-able summary (the job's result)."""
        return {
            "log_id": self.log_id,
            "crash_detected": self.crash_detected,
            "samples": self.samples,
            "objects": {
                name: {"object_id": item.object_id, "bucket": item.bucket,
                       "key": item.key, "sha256": item.sha256_hex}
                for name, item in self.objects.items()
            },
            "seconds": {name: round(value, 3) for name, value in self.seconds.items()},
        }  # fmt: skip


class StoredLogProcessor:
    """Run the gateway pipeline on files and publish the results; see module."""

    def __init__(
        self,
        catalog: Catalog,
        store: ObjectStore,
        buckets: BucketNames,
        uploader: Uploader,
        *,
        detector: CrashDetector | None,
        scratch_dir: Path,
        options: ProcessOptions | None = None,
        software_version: str,
        clock: Any = utc_now,
    ) -> None:
        """Process into ``scratch_dir`` and upload with ``uploader``."""
        self._catalog = catalog
        self._store = store
        self._buckets = buckets
        self._layout = ObjectLayout(buckets)
        self._uploader = uploader
        self._detector = detector
        self._scratch = Path(scratch_dir)
        self._options = options or server_process_options()
        self._software_version = software_version
        self._clock = clock

    def process_object(
        self,
        source: AnalyticsSource,
        *,
        units: UnitOptions | None = None,
        columns: Mapping[str, str] | None = None,
    ) -> AnalyticsOutcome:
        """Download ``source``, process it and publish the results.

        Raises:
            ObjectNotFound: the source is not in the store.
            BadInputError: (subclasses) the file is not a usable log or CSV;
                the message names the file and the place.
            ProcessingEnvironmentError, StorageError, CatalogError: a step
                failed; running again resumes (every step is idempotent).
        """
        started = time.perf_counter()
        work = self._scratch / f"src-{time.time_ns()}"
        work.mkdir(parents=True)
        try:
            path = work / source.file_name
            self._store.download_file(source.bucket, source.key, path)
            if path.suffix == ".gz":
                path = _gunzip(path)
            downloaded = time.perf_counter()
            outcome = self.process_file(
                path, source, units=units, columns=columns, out_dir=work / "out"
            )
        finally:
            shutil.rmtree(work, ignore_errors=True)
        outcome.seconds["download"] = downloaded - started
        outcome.seconds["total"] = time.perf_counter() - started
        return outcome

    def process_file(
        self,
        path: Path,
        source: AnalyticsSource,
        *,
        units: UnitOptions | None = None,
        columns: Mapping[str, str] | None = None,
        out_dir: Path | None = None,
    ) -> AnalyticsOutcome:
        """Process a local copy of ``source`` and publish the results.

        Raises:
            As :meth:`process_object`.
        """
        check_identifier("rider_id", source.rider_id)
        check_identifier("suit_id", source.suit_id)
        out_dir = out_dir or self._scratch / f"out-{time.time_ns()}"
        started = time.perf_counter()
        try:
            result = ingest_file(
                path,
                source.rider_id,
                source.suit_id,
                out_dir,
                self._detector,
                units=units,
                columns=columns,
                options=self._options,
                log_id=source.log_id,
            )
            processed = time.perf_counter()
            outcome = AnalyticsOutcome(
                result.log_id, result.crash.detected, result.samples
            )
            refs = self._upload(result, source)
            uploaded = time.perf_counter()
            outcome.objects = self._catalogue(refs, source, result.crash.detected)
            self._notify(outcome, source)
        finally:
            shutil.rmtree(out_dir, ignore_errors=True)
        outcome.seconds.update(
            process=processed - started,
            upload=uploaded - processed,
            catalogue=time.perf_counter() - uploaded,
        )
        _LOGGER.info(
            "rider %s suit %s: %s/%s processed as log %s (%d samples, crash %s) "
            "in %.2f s",
            source.rider_id,
            source.suit_id,
            source.bucket,
            source.key,
            result.log_id,
            result.samples,
            result.crash.detected,
            time.perf_counter() - started,
        )
        return outcome

    # -- steps ------------------------------------------------------------------

    def _metadata(
        self, result: ProcessResult, source: AnalyticsSource, kind: str, path: Path
    ) -> ObjectMetadata:
        analytics = result.analytics
        model = analytics.get("model") or {}
        return ObjectMetadata(
            sha256_hex=sha256_file(path),
            log_id=result.log_id,
            suit_id=source.suit_id,
            rider_id=source.rider_id,
            kind=kind,
            log_start_utc=analytics.get("start_utc"),
            log_end_utc=analytics.get("end_utc"),
            sample_count=result.samples,
            software_version=str(
                analytics.get("software_version") or self._software_version
            ),
            model_version=None if not model.get("version") else str(model["version"]),
            extra={"source": f"{source.bucket}/{source.key}"},
        )

    def _upload(
        self, result: ProcessResult, source: AnalyticsSource
    ) -> dict[str, ObjectRef]:
        if result.analytics_path is None:
            raise ValueError(f"log {result.log_id}: the pipeline wrote no analytics")
        rider, suit, log_id = source.rider_id, source.suit_id, result.log_id
        planned: list[tuple[str, ObjectRef, Path]] = [
            ("analytics", self._layout.analytics(rider, suit, log_id),
             result.analytics_path),
        ]  # fmt: skip
        if source.write_raw:
            day = _log_day(result.analytics, self._clock())
            ref = self._layout.raw_csv(rider, suit, day, log_id)
            planned.append(("raw_csv", ref, result.csv_path))
        if result.crash.detected:
            ref = self._layout.crash(rider, suit, log_id, result.csv_path.name)
            planned.append(("crash_raw_csv", ref, result.csv_path))
        refs = {}
        for kind, ref, path in planned:
            self._uploader.upload_file(
                ref,
                path,
                self._metadata(result, source, kind, path),
                content_type=content_type_for(path),
            )
            refs[kind] = ref
        return refs

    def _catalogue(
        self,
        refs: Mapping[str, ObjectRef],
        source: AnalyticsSource,
        crash: bool | None,
    ) -> dict[str, CatalogObject]:
        rider = self._catalog.get_rider(source.rider_id)
        stored: dict[str, CatalogObject] = {}
        for name, ref in refs.items():
            info = self._store.head_object(ref.bucket, ref.key)
            if info is None:
                raise FileNotFoundError(f"{ref}: uploaded but not in the store")
            record = record_from_object(info, self._buckets, rider=rider, crash=crash)
            stored[name] = self._catalog.upsert_object(record).object
        if crash and not source.write_raw:
            # The raw source itself now has a crash: keep it out of retention.
            row = self._catalog.get_object_by_key(source.bucket, source.key)
            if row is not None and row.kind is ObjectKind.RAW and row.crash is not True:
                learnt: ObjectRecord = dataclasses.replace(row.as_record(), crash=True)
                stored["raw_csv"] = self._catalog.upsert_object(learnt).object
        return stored

    def _notify(self, outcome: AnalyticsOutcome, source: AnalyticsSource) -> None:
        analytics = outcome.objects.get("analytics")
        if analytics is None:
            return
        rider, suit, log_id = source.rider_id, source.suit_id, outcome.log_id
        record_notification(
            self._catalog,
            type=NotificationType.ANALYTICS_READY,
            rider_id=rider,
            notification_id=notification_id_for(
                NotificationType.ANALYTICS_READY, rider, suit, log_id,
                analytics.sha256_hex,
            ),
            payload={
                "rider_id": rider,
                "suit_id": suit,
                "log_id": log_id,
                "object_id": analytics.object_id,
                "analytics": f"/api/v1/logs/{log_id}/analytics?suit_id={suit}",
                "source": f"{source.bucket}/{source.key}",
            },
        )  # fmt: skip
        if outcome.crash_detected:
            record_notification(
                self._catalog,
                type=NotificationType.CRASH_DETECTED,
                rider_id=rider,
                notification_id=notification_id_for(
                    NotificationType.CRASH_DETECTED, rider, suit, log_id
                ),
                payload={"rider_id": rider, "suit_id": suit, "log_id": log_id},
            )


def _log_day(analytics: Mapping[str, Any], now: dt.datetime) -> dt.date:
    """Return the ride's date: its wall-clock start, else today (UTC)."""
    start = analytics.get("start_utc")
    if isinstance(start, str) and start:
        return dt.datetime.fromisoformat(start.replace("Z", "+00:00")).date()
    return now.astimezone(dt.UTC).date()


def _gunzip(path: Path) -> Path:
    """Unpack ``x.csv.gz`` beside itself as ``x.csv``; return the new path."""
    target = path.with_suffix("")
    with gzip.open(path, "rb") as source, open(target, "wb") as out:
        shutil.copyfileobj(source, out, _COPY_BYTES)
    path.unlink()
    return target
