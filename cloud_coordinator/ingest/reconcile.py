"""Reconciliation: catalogue stored objects whose event never arrived.

A gateway's event can be lost (its outbox wiped, a broker without
persistence restarted). Reconciliation lists the raw, analytics and crash
buckets, asks the catalog which keys it lacks, verifies each of those like
ingest does and catalogues it, then records the same notifications ingest
would (same ids, so nothing is announced twice). Buckets are done crash
first, then analytics, then raw, so a raw object learns its log's crash
verdict from objects catalogued just before.

Known limits: a bucket listing is held in memory (about 200 bytes a key);
an object found this way has no gateway id until its event arrives.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from edge_agent.upload import BucketNames, BucketNotFound, ObjectStore

from ..catalog import (
    Catalog,
    InvalidRecord,
    ObjectFilter,
    ObjectKind,
    ObjectRecord,
    UpsertOutcome,
)
from ..catalog.ingestlog import QuarantineEntry
from ..catalog.sqlbase import utc_now
from .errors import RejectedInput
from .notices import analytics_ready, crash_detected, crash_of_analytics
from .stats import IngestStats
from .verify import VerifyMode, verify_object

__all__ = ["ReconcileReport", "reconcile"]

_LOGGER = logging.getLogger(__name__)


@dataclass
class ReconcileReport:
    """What one reconciliation pass found."""

    listed: int = 0
    catalogued: list[str] = field(default_factory=list)
    quarantined: dict[str, str] = field(default_factory=dict)


def _crash_of_log(catalog: Catalog, record: ObjectRecord) -> bool | None:
    """Return what the catalog knows of the crash verdict of ``record``'s log."""
    scope = ObjectFilter(rider_id=record.rider_id, suit_id=record.suit_id)
    crash_copy = catalog.list_objects(
        dataclasses.replace(scope, kind=ObjectKind.CRASH, log_id=record.log_id),
        limit=1,
    )
    if crash_copy.items:
        return True
    analytics = catalog.get_log_analytics(record.log_id, within=scope)
    return None if analytics is None else analytics.crash


def reconcile(
    catalog: Catalog,
    store: ObjectStore,
    *,
    buckets: BucketNames | None = None,
    verify: VerifyMode = VerifyMode.HASH,
    stats: IngestStats | None = None,
    temp_dir: Path | None = None,
    clock: Callable[[], dt.datetime] = utc_now,
) -> ReconcileReport:
    """Catalogue every stored object the catalog lacks; return what was done.

    Bad objects are quarantined (source ``reconcile``) and counted.

    Raises:
        StorageError, CatalogError: the store or catalog failed; the pass
            stops and the next one starts over (it is idempotent).
    """
    buckets = buckets or BucketNames()
    stats = stats or IngestStats()
    report = ReconcileReport()
    for kind, bucket in (
        (ObjectKind.CRASH, buckets.crash),
        (ObjectKind.ANALYTICS, buckets.analytics),
        (ObjectKind.RAW, buckets.raw),
    ):
        try:
            keys = [summary.key for summary in store.list_objects(bucket)]
        except BucketNotFound:
            _LOGGER.warning("reconcile: bucket %s does not exist; skipped", bucket)
            continue
        report.listed += len(keys)
        known = catalog.existing_object_keys(bucket, keys)
        for key in keys:
            if key in known:
                continue
            where = f"{bucket}/{key}"
            try:
                verified = verify_object(
                    store, buckets, bucket, key, mode=verify, temp_dir=temp_dir
                )
                rider = catalog.get_rider(verified.record.rider_id)
                record = dataclasses.replace(
                    verified.record,
                    user_type=None if rider is None else rider.user_type,
                    product=None if rider is None else rider.product,
                )
                if kind is ObjectKind.CRASH:
                    crash: bool | None = True
                elif kind is ObjectKind.ANALYTICS:
                    data = verified.data or store.get_object(bucket, key)
                    crash = crash_of_analytics(data)
                else:
                    crash = _crash_of_log(catalog, record)
                result = catalog.upsert_object(dataclasses.replace(record, crash=crash))
            except (RejectedInput, InvalidRecord) as exc:
                catalog.quarantine(
                    QuarantineEntry(
                        source="reconcile",
                        reason=str(exc),
                        payload=json.dumps({"bucket": bucket, "key": key}).encode(),
                    ),
                    clock(),
                )
                report.quarantined[where] = str(exc)
                stats.add(quarantined=1)
                _LOGGER.error("reconcile: %s kept aside: %s", where, exc)
                continue
            if result.outcome is UpsertOutcome.UNCHANGED:
                continue
            stored = result.object
            now = clock()
            if stored.kind is ObjectKind.ANALYTICS:
                catalog.add_notification(analytics_ready(stored, now))
            if stored.kind is ObjectKind.CRASH:
                catalog.add_notification(crash_detected([stored], now))
            report.catalogued.append(where)
            stats.add(reconciled=1)
            _LOGGER.info("reconcile: %s catalogued (its event never came)", where)
    _LOGGER.info(
        "reconcile: %d objects listed, %d catalogued, %d kept aside",
        report.listed,
        len(report.catalogued),
        len(report.quarantined),
    )
    return report
