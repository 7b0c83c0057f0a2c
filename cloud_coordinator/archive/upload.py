"""Upload an on-premise archive folder, then process each file like a gateway.

``cloud-coordinator upload-archive --rider ID --suit ID DIR`` runs
:func:`upload_archive`:

1. **Store as they are.** Every regular file directly in ``DIR`` goes to
   ``archive/{rider}/{suit}/{upload_id}/{file name}`` unchanged, through the
   gateway's :class:`~edge_agent.upload.Uploader`: files from 16 MB on in
   8 MB parts, journalled in the state folder, so an interrupted upload
   resumes where it stopped and a finished file is skipped when the command
   runs again. ``upload_id`` is derived from the rider, suit and the
   folder's path unless given, so running the same command again resumes.
2. **Process.** Each stored file goes through the gateway's pipeline
   (:class:`~cloud_coordinator.jobs.StoredLogProcessor`: suit logs by their
   magic, CSV exports with the unit options); its processed CSV goes to
   ``raw/``, its analytics to ``analytics/`` (and, with a detected crash,
   the CSV to ``crash/``), all catalogued and announced. A file processed
   before with the same bytes, software and crash model is skipped
   (``processed.ProcessedFiles``) unless ``reprocess`` is set.

A file that cannot be processed (corrupt log, CSV without declared units,
a name that cannot be a key) is quarantined: copied to
``{state}/quarantine/{upload_id}/`` beside a ``.reason.txt`` naming the
problem, reported, counted; the other files go on. The original stays in
the archive bucket, as uploaded.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from edge_agent.cli.cmd_ingest import import_log_id
from edge_agent.custody.durable import sha256_file
from edge_agent.ingest import UnitOptions
from edge_agent.processing import SOFTWARE_VERSION, BadInputError, CrashDetector
from edge_agent.service.progress import SILENT, Progress
from edge_agent.upload import (
    BucketNames,
    InvalidObjectKey,
    ObjectLayout,
    ObjectMetadata,
    ObjectRef,
    ObjectStore,
    Uploader,
    UploadJournal,
    UploadSettings,
)
from edge_agent.upload.factory import etags_are_body_md5

from ..catalog import Catalog, check_identifier
from ..jobs import AnalyticsOutcome, AnalyticsSource, StoredLogProcessor
from .processed import ProcessedFiles, ProcessingKey

__all__ = ["ARCHIVE_KIND", "ArchiveReport", "default_upload_id", "upload_archive"]

_LOGGER = logging.getLogger(__name__)

# Object kind recorded in an archived original's metadata.
ARCHIVE_KIND = "archive_original"


@dataclass
class ArchiveReport:
    """What an archive upload did, file by file."""

    upload_id: str
    uploaded: dict[str, ObjectRef] = field(default_factory=dict)
    skipped_present: list[str] = field(default_factory=list)
    processed: dict[str, AnalyticsOutcome] = field(default_factory=dict)
    # Files processed by an earlier run the same way: name -> log id.
    already_processed: dict[str, str] = field(default_factory=dict)
    quarantined: dict[str, str] = field(default_factory=dict)
    parts_sent: int = 0
    parts_reused: int = 0

    @property
    def ok(self) -> bool:
        """Return True when no file was quarantined."""
        return not self.quarantined


def default_upload_id(rider_id: str, suit_id: str, folder: Path) -> str:
    """Return a stable upload id for ``folder`` of a rider's suit."""
    text = f"{rider_id}\n{suit_id}\n{Path(folder).resolve()}"
    return "a-" + hashlib.sha256(text.encode()).hexdigest()[:16]


def _archive_files(folder: Path) -> list[Path]:
    return sorted(
        path
        for path in folder.iterdir()
        if path.is_file() and not path.name.startswith(".")
    )


class _PartProgress:
    """Feed multipart progress of one file into a byte counter."""

    def __init__(self, task: object, size_bytes: int, part_size_bytes: int) -> None:
        self._task = task
        self._size = size_bytes
        self._part = part_size_bytes
        self.reported = 0

    def __call__(self, _ref: ObjectRef, number: int, count: int) -> None:
        done = self._size if number == count else number * self._part
        self._task.advance(max(0, done - self.reported))  # type: ignore[attr-defined]
        self.reported = max(self.reported, done)


def upload_archive(
    folder: Path,
    rider_id: str,
    suit_id: str,
    *,
    catalog: Catalog,
    store: ObjectStore,
    buckets: BucketNames,
    state_dir: Path,
    detector: CrashDetector | None,
    upload_id: str | None = None,
    units: UnitOptions | None = None,
    columns: Mapping[str, str] | None = None,
    progress: Progress = SILENT,
    reprocess: bool = False,
) -> ArchiveReport:
    """Upload ``folder``'s files to the archive bucket, then process each.

    Raises:
        InvalidRecord: a malformed rider, suit or upload id.
        NotADirectoryError: ``folder`` is not a folder.
        StorageError, CatalogError: the store or catalog failed; run the
            command again to resume (finished work is skipped).
    """
    check_identifier("rider_id", rider_id)
    check_identifier("suit_id", suit_id)
    folder = Path(folder)
    if not folder.is_dir():
        raise NotADirectoryError(f"upload-archive: {folder} is not a folder")
    upload_id = upload_id or default_upload_id(rider_id, suit_id, folder)
    check_identifier("upload_id", upload_id)
    report = ArchiveReport(upload_id)
    layout = ObjectLayout(buckets)
    state_dir.mkdir(parents=True, exist_ok=True)
    quarantine = state_dir / "quarantine" / upload_id
    store.ensure_bucket(buckets.archive)
    for bucket in (buckets.raw, buckets.analytics, buckets.crash):
        store.ensure_bucket(bucket)

    journal = UploadJournal(state_dir / "journal.db")
    done = ProcessedFiles(state_dir / "processed.db")
    model_sha256 = "" if detector is None else detector.model_block["sha256"]
    try:
        # Envelope-encrypted stores give ETags of the ciphertext.
        settings = UploadSettings(verify_etag=etags_are_body_md5(store))
        uploader = Uploader(store, journal, settings)
        files = _archive_files(folder)
        refs = _upload_originals(
            files, rider_id, suit_id, upload_id, layout, uploader, report,
            quarantine, progress,
        )  # fmt: skip
        processor = StoredLogProcessor(
            catalog,
            store,
            buckets,
            uploader,
            detector=detector,
            scratch_dir=state_dir / "scratch",
            software_version=SOFTWARE_VERSION,
        )
        with progress.task("processing", len(refs), "files") as task:
            for path, (ref, sha256_hex) in refs.items():
                key = ProcessingKey(
                    upload_id, path.name, sha256_hex, SOFTWARE_VERSION, model_sha256
                )
                earlier = None if reprocess else done.log_id(key)
                if earlier is not None:
                    report.already_processed[path.name] = earlier
                    task.advance(1)
                    continue
                source = AnalyticsSource(ref.bucket, ref.key, rider_id, suit_id)
                try:
                    outcome = processor.process_file(
                        path, source, units=units, columns=columns
                    )
                except BadInputError as exc:
                    _quarantine(path, str(exc), quarantine, report)
                else:
                    report.processed[path.name] = outcome
                    done.record(key, outcome.log_id)
                task.advance(1)
    finally:
        done.close()
        journal.close()
    _LOGGER.info(
        "upload %s (rider %s, suit %s): %d files stored (%d already), %d "
        "processed (%d already), %d quarantined",
        upload_id,
        rider_id,
        suit_id,
        len(report.uploaded),
        len(report.skipped_present),
        len(report.processed),
        len(report.already_processed),
        len(report.quarantined),
    )
    return report


def _upload_originals(
    files: list[Path],
    rider_id: str,
    suit_id: str,
    upload_id: str,
    layout: ObjectLayout,
    uploader: Uploader,
    report: ArchiveReport,
    quarantine: Path,
    progress: Progress,
) -> dict[Path, tuple[ObjectRef, str]]:
    """Store each file as it is; return the files stored and their SHA-256."""
    refs: dict[Path, tuple[ObjectRef, str]] = {}
    total = sum(path.stat().st_size for path in files)
    with progress.task("uploading", total, "B") as task:
        for path in files:
            size_bytes = path.stat().st_size
            try:
                ref = layout.archive(rider_id, suit_id, upload_id, path.name)
            except InvalidObjectKey as exc:
                _quarantine(path, str(exc), quarantine, report)
                task.advance(size_bytes)
                continue
            counter = _PartProgress(
                task, size_bytes, uploader.part_size_for(size_bytes)
            )
            with_progress = Uploader(
                uploader.store,
                uploader.journal,
                uploader.settings,
                on_part_done=counter,
            )
            sha256_hex = sha256_file(path)
            metadata = ObjectMetadata(
                sha256_hex=sha256_hex,
                log_id=import_log_id(path),
                suit_id=suit_id,
                rider_id=rider_id,
                kind=ARCHIVE_KIND,
                software_version=SOFTWARE_VERSION,
                extra={"upload-id": upload_id},
            )
            result = with_progress.upload_file(ref, path, metadata)
            task.advance(size_bytes - counter.reported)
            if result.already_present:
                report.skipped_present.append(path.name)
            report.parts_sent += result.parts_sent
            report.parts_reused += result.parts_reused
            report.uploaded[path.name] = ref
            refs[path] = (ref, sha256_hex)
    return refs


def _quarantine(path: Path, reason: str, folder: Path, report: ArchiveReport) -> None:
    """Copy a rejected file aside with its reason; count it."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy2(path, folder / path.name)
    (folder / f"{path.name}.reason.txt").write_text(reason + "\n")
    report.quarantined[path.name] = reason
    _LOGGER.error("%s: quarantined in %s: %s", path, folder, reason)
