"""The retention job: announce raw-data deletions, then delete what expired.

One run (``cloud-coordinator retention``, from cron or the systemd timer in
``deploy/systemd/``) does two passes over the catalog:

1. **Notice.** Every raw object whose download window closes within
   ``notice_days`` and whose date was not announced yet gets a
   ``raw_deletion_scheduled`` notification for its rider (through the
   notification outbox, with an id derived from the object and the date,
   so a repeated run never announces twice), then the notice is recorded
   (and audited). The announced date is never less than ``notice_days``
   after the notice: a window that closes sooner, or closed already because
   the job did not run in the notice window, is pushed forward to
   ``now + notice_days``, and the catalog moves the object's retention date
   (its download window) there too.
2. **Delete.** Every raw object whose window has closed and whose current
   date was announced (the catalog lists nothing else) is deleted from the
   store and the catalog in one step, and the deletion is written to the
   audit log (:meth:`~cloud_coordinator.catalog.Catalog.delete_object`).
   The policy is checked again inside that transaction: a log with a crash
   (flag or crash object) and the data of professional riders are never
   deleted, whatever the stored date says. Analytics and crash objects are
   not touched: metrics are kept forever, crash data until R&D releases it.

Dry run lists what each pass would do and changes nothing. A run is
idempotent: what was announced or deleted is not found again. An object the
store refuses to delete is counted as failed, left catalogued, and retried
by the next run; the job goes on with the others.

Known limit: a run that stops between sending a notice and recording it
sends the notice again on the next run, with that run's (later) date; the
rider hears twice, and the later date counts.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from edge_agent.upload import ObjectStore, StorageError

from ..catalog import AuditAction, AuditEntry, Catalog, CatalogObject
from ..catalog.sqlbase import utc_now
from ..notify import NotificationType, notification_id_for, record_notification

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "DEFAULT_NOTICE_DAYS",
    "RETENTION_ACTOR",
    "RetentionJob",
    "RetentionReport",
]

_LOGGER = logging.getLogger(__name__)

# Riders hear about a deletion three days ahead: enough to download a ride
# from the app over a weekend.
DEFAULT_NOTICE_DAYS = 3.0
# Objects read from the catalog per query; each deletion is its own
# transaction, so this only bounds memory and query size.
DEFAULT_BATCH_SIZE = 500
# Who the audit log names for deletions made by this job.
RETENTION_ACTOR = "retention"


@dataclass
class RetentionReport:
    """What one run did (or, in a dry run, would do)."""

    now: dt.datetime
    dry_run: bool
    notified: list[CatalogObject] = field(default_factory=list)
    deleted: list[CatalogObject] = field(default_factory=list)
    failed: dict[int, str] = field(default_factory=dict)

    @property
    def deleted_bytes(self) -> int:
        """Return the bytes freed (or to be freed)."""
        return sum(item.size_bytes for item in self.deleted)

    def summary(self) -> str:
        """Return one line for the operator."""
        verb = "would" if self.dry_run else "did"
        return (
            f"retention at {self.now.isoformat()}: {verb} notify "
            f"{len(self.notified)} objects, delete {len(self.deleted)} "
            f"({self.deleted_bytes} bytes); {len(self.failed)} failed"
        )


class RetentionJob:
    """Announce and delete expired raw data; see the module docstring."""

    def __init__(
        self,
        catalog: Catalog,
        store: ObjectStore,
        *,
        notice_days: float = DEFAULT_NOTICE_DAYS,
        batch_size: int = DEFAULT_BATCH_SIZE,
        clock: Callable[[], dt.datetime] = utc_now,
        actor: str = RETENTION_ACTOR,
    ) -> None:
        """Work on ``catalog`` and ``store``.

        Raises:
            ValueError: a negative notice period or a batch size below 1.
        """
        if notice_days < 0 or batch_size < 1:
            raise ValueError(
                f"retention job: notice_days {notice_days} must be >= 0 and "
                f"batch_size {batch_size} >= 1"
            )
        self._catalog = catalog
        self._store = store
        self._notice = dt.timedelta(days=notice_days)
        self._batch_size = batch_size
        self._clock = clock
        self._actor = actor

    def run(
        self, *, now: dt.datetime | None = None, dry_run: bool = False
    ) -> RetentionReport:
        """Run both passes at ``now`` (default: the clock); return the report.

        Raises:
            CatalogError: the catalog failed (what was done so far stays
                done; the next run continues).
        """
        now = (now or self._clock()).astimezone(dt.UTC)
        report = RetentionReport(now, dry_run)
        self._notify(report)
        self._delete(report)
        _LOGGER.info("%s", report.summary())
        return report

    def _notify(self, report: RetentionReport) -> None:
        until = report.now + self._notice
        after: tuple[dt.datetime, int] | None = None
        while True:
            due = self._catalog.list_retention_notices_due(
                report.now, until, limit=self._batch_size, after=after
            )
            announced = [_announced(item, until) for item in due]
            if not report.dry_run:
                for item in announced:
                    self._announce(item)
                self._catalog.mark_retention_notified(announced, report.now)
            report.notified.extend(announced)
            if len(due) < self._batch_size:
                return
            after = _position(due[-1])

    def _announce(self, item: CatalogObject) -> None:
        assert item.retention_until is not None
        delete_after = item.retention_until.isoformat()
        record_notification(
            self._catalog,
            type=NotificationType.RAW_DELETION_SCHEDULED,
            rider_id=item.rider_id,
            notification_id=notification_id_for(
                NotificationType.RAW_DELETION_SCHEDULED,
                item.rider_id,
                item.bucket,
                item.key,
                delete_after,
            ),
            payload={
                "object_id": item.object_id,
                "rider_id": item.rider_id,
                "suit_id": item.suit_id,
                "log_id": item.log_id,
                "size_bytes": item.size_bytes,
                "delete_after": delete_after,
                "download": f"/api/v1/objects/{item.object_id}/download",
            },
        )
        _LOGGER.info(
            "rider %s: raw object %d (log %s) announced for deletion after %s",
            item.rider_id,
            item.object_id,
            item.log_id,
            delete_after,
        )

    def _delete(self, report: RetentionReport) -> None:
        # Pages by (retention date, id): deleted rows vanish, failed ones are
        # passed over, and a dry run still sees every candidate once.
        after: tuple[dt.datetime, int] | None = None
        while True:
            batch = self._catalog.list_expired_raw(
                report.now, limit=self._batch_size, after=after
            )
            for item in batch:
                if report.dry_run:
                    report.deleted.append(item)
                else:
                    self._delete_one(item, report)
            if len(batch) < self._batch_size:
                return
            after = _position(batch[-1])

    def _delete_one(self, item: CatalogObject, report: RetentionReport) -> bool:
        """Delete one object; return False if it stays (failed or no longer due)."""
        store = self._store
        audit = AuditEntry(
            AuditAction.RETENTION_DELETE,
            self._actor,
            detail=f"download window closed at {item.retention_until}",
        )
        try:
            deleted = self._catalog.delete_object(
                item.object_id,
                audit,
                expired_at=report.now,
                before_commit=lambda row: store.delete_object(row.bucket, row.key),
            )
        except StorageError as exc:
            report.failed[item.object_id] = str(exc)
            _LOGGER.error(
                "rider %s: raw object %d (%s/%s) not deleted, kept for the next "
                "run: %s",
                item.rider_id,
                item.object_id,
                item.bucket,
                item.key,
                exc,
            )
            return False
        if deleted is None:
            _LOGGER.info(
                "rider %s: raw object %d not deleted: gone already (another "
                "run) or no longer due (crash learnt, rider now professional)",
                item.rider_id,
                item.object_id,
            )
            return False
        report.deleted.append(deleted)
        _LOGGER.info(
            "rider %s: raw object %d (%s/%s, %d bytes) deleted, window closed %s",
            deleted.rider_id,
            deleted.object_id,
            deleted.bucket,
            deleted.key,
            deleted.size_bytes,
            deleted.retention_until,
        )
        return True


def _announced(item: CatalogObject, earliest: dt.datetime) -> CatalogObject:
    """Return ``item`` with the date to announce: not before ``earliest``."""
    assert item.retention_until is not None
    if item.retention_until >= earliest:
        return item
    return dataclasses.replace(item, retention_until=earliest)


def _position(item: CatalogObject) -> tuple[dt.datetime, int]:
    """Return a listed object's place in the retention order."""
    assert item.retention_until is not None
    return (item.retention_until, item.object_id)
