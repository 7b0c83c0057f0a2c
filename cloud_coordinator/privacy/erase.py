"""Erase everything stored about a rider, keeping the audit of it.

Order matters for a crash mid-way: objects go first, each one deleted from
the store inside the catalog transaction that removes its row and audits
it (:meth:`~cloud_coordinator.catalog.Catalog.delete_object`); then stored
objects under the rider's prefix the catalog does not index (archive
uploads, leftovers) and unfinished multipart uploads; the rider's own
records (registry row, verdicts, jobs, notices, notifications) last. An
erasure interrupted at any point is finished by running it again. Other
riders' data is never touched: every step selects by rider id or by the
``{rider_id}/`` key prefix of every bucket's layout.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from edge_agent.upload import BucketNames, BucketNotFound, ObjectStore

from ..catalog import AuditAction, AuditEntry, Catalog, check_identifier
from .export import rider_objects, stored_under_rider

__all__ = ["ErasureReport", "erase_rider"]

_LOGGER = logging.getLogger(__name__)


@dataclass
class ErasureReport:
    """What an erasure deleted."""

    rider_id: str
    catalogued_objects: int = 0
    uncatalogued_objects: int = 0
    bytes_deleted: int = 0
    multipart_uploads_aborted: int = 0
    records: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        """Return the report as a JSON-able mapping."""
        return {
            "rider_id": self.rider_id,
            "catalogued_objects": self.catalogued_objects,
            "uncatalogued_objects": self.uncatalogued_objects,
            "bytes_deleted": self.bytes_deleted,
            "multipart_uploads_aborted": self.multipart_uploads_aborted,
            "records": dict(self.records),
        }


def erase_rider(
    catalog: Catalog,
    store: ObjectStore,
    buckets: BucketNames,
    rider_id: str,
    *,
    actor: str,
) -> ErasureReport:
    """Delete a rider's objects (raw, analytics, crash, archive) and records.

    Args:
        catalog, store, buckets: where the rider's data is.
        rider_id: whose data goes.
        actor: who asked (``rider:r1``, ``admin:alice``), for the audit.

    Raises:
        InvalidRecord: a malformed rider id.
        CatalogError, StorageError: a step failed; what was done stays
            done and audited, and running the erasure again finishes it.
    """
    check_identifier("rider_id", rider_id)
    report = ErasureReport(rider_id)

    # Catalogued objects: bytes and row in one audited step each.
    for row in rider_objects(catalog, rider_id):
        deleted = catalog.delete_object(
            row.object_id,
            AuditEntry(AuditAction.ERASURE, actor, detail="erasure on request"),
            before_commit=lambda item: store.delete_object(item.bucket, item.key),
        )
        if deleted is not None:
            report.catalogued_objects += 1
            report.bytes_deleted += deleted.size_bytes

    # Whatever else is stored under the rider's prefix.
    for item in stored_under_rider(store, buckets, rider_id):
        store.delete_object(item.bucket, item.key)
        catalog.record_audit(
            AuditEntry(
                AuditAction.ERASURE,
                actor,
                rider_id=rider_id,
                bucket=item.bucket,
                key=item.key,
                size_bytes=item.size_bytes,
                detail="erasure on request (object not catalogued)",
            )
        )
        report.uncatalogued_objects += 1
        report.bytes_deleted += item.size_bytes
    for bucket in (buckets.raw, buckets.analytics, buckets.crash, buckets.archive):
        try:
            uploads = store.list_multipart_uploads(bucket, prefix=f"{rider_id}/")
        except BucketNotFound:
            continue
        for upload in uploads:
            store.abort_multipart_upload(bucket, upload.key, upload.upload_id)
            report.multipart_uploads_aborted += 1

    # The rider's own records; the audit log stays.
    report.records = catalog.erase_rider_records(rider_id, actor)
    _LOGGER.info(
        "rider %s: erased by %s: %d catalogued and %d other objects (%d bytes), "
        "records %s",
        rider_id,
        actor,
        report.catalogued_objects,
        report.uncatalogued_objects,
        report.bytes_deleted,
        report.records,
    )
    return report
