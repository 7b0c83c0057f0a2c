"""Commit one device window: merge, write the gzip CSV, catalogue it.

A window object holds one device's samples of one time window as received
by one worker; its key depends only on the rider, suit, device, window
start and worker id (``raw/{rider}/{suit}/{yyyy}/{mm}/{dd}/{log_id}.csv.gz``
with ``log_id = {device}-{yyyymmddThhmmssZ}-{worker}``). Only that worker
writes it, so read-merge-write needs no lock across workers, and a worker
restarted under the same id finds its own objects again.

Merging keys rows by their time: a sample already in the object with the
same values is a repeat (a redelivery after a crash between commit and
acknowledgement) and is dropped; the same time with other values is a
conflict, handed back to be kept aside. The bytes depend only on the rows,
so a retried flush writes an identical object and the catalog upsert
reports it unchanged.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field

from edge_agent.processing.report import SOFTWARE_VERSION
from edge_agent.upload import (
    BodyChecksum,
    BucketNames,
    ChecksumMode,
    ObjectLayout,
    ObjectMetadata,
    ObjectStore,
    StorageError,
)

from ..catalog import (
    Catalog,
    CatalogError,
    Device,
    ObjectKind,
    ObjectRecord,
    UpsertOutcome,
)
from .csvfile import WindowRows, decode_window, encode_window, format_value
from .errors import FlushFailed
from .samples import DeviceSample

__all__ = ["OBJECT_TYPE", "WindowCommit", "WindowKey", "WindowWriter"]

_LOGGER = logging.getLogger(__name__)

OBJECT_TYPE = "device_csv"
# Windows kept in memory after a commit, so the next flush of a still-open
# window merges without reading the object back; a restarted worker reads.
CACHED_WINDOWS = 256
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


@dataclass(frozen=True, order=True)
class WindowKey:
    """One device's time window (start in µs since the epoch)."""

    device_id: str
    start_us: int

    @property
    def start(self) -> dt.datetime:
        """Return the window start as an aware UTC datetime."""
        return _EPOCH + dt.timedelta(microseconds=self.start_us)


@dataclass
class WindowCommit:
    """What committing one window did."""

    key: str
    added: int = 0
    repeats: int = 0
    outcome: UpsertOutcome | None = None
    conflicts: list[DeviceSample] = field(default_factory=list)


def _time(t_us: int) -> dt.datetime:
    return _EPOCH + dt.timedelta(microseconds=t_us)


class WindowWriter:
    """Write window objects for one worker; see the module docstring."""

    def __init__(
        self,
        store: ObjectStore,
        catalog: Catalog,
        buckets: BucketNames,
        worker_id: str,
        *,
        checksum_mode: ChecksumMode = ChecksumMode.MD5,
        quarantine_bucket: str | None = None,
    ) -> None:
        """Write to ``buckets.raw`` of ``store`` and index in ``catalog``.

        A window object that cannot be read back (overwritten by something
        else) is copied to ``quarantine_bucket`` under ``windows/`` and the
        window starts afresh, so one damaged object cannot stall the worker;
        without a quarantine bucket the flush fails instead.
        """
        self._quarantine_bucket = quarantine_bucket
        self._store = store
        self._catalog = catalog
        self._buckets = buckets
        self._layout = ObjectLayout(buckets)
        self._worker_id = worker_id
        self._checksum_mode = checksum_mode
        self._cache: OrderedDict[str, WindowRows] = OrderedDict()

    def log_id(self, window: WindowKey) -> str:
        """Return the log id of a window object of this worker."""
        stamp = window.start.strftime("%Y%m%dT%H%M%SZ")
        return f"{window.device_id}-{stamp}-{self._worker_id}"

    def _existing(self, bucket: str, key: str) -> WindowRows:
        cached = self._cache.get(key)
        if cached is not None:
            self._cache.move_to_end(key)
            return {t_us: dict(row) for t_us, row in cached.items()}
        if self._store.head_object(bucket, key) is None:
            return {}
        data = self._store.get_object(bucket, key)
        try:
            return decode_window(data, f"{bucket}/{key}")
        except ValueError as exc:
            if self._quarantine_bucket is None:
                raise
            aside = f"windows/{bucket}/{key}"
            self._store.put_object(
                self._quarantine_bucket,
                aside,
                data,
                metadata={"reason": "unreadable_window"},
                checksum=BodyChecksum.of(data, self._checksum_mode),
            )
            _LOGGER.error(
                "%s: stored window unreadable (%s); copied to %s/%s and started afresh",
                f"{bucket}/{key}",
                exc,
                self._quarantine_bucket,
                aside,
            )
            return {}

    def commit(
        self, window: WindowKey, device: Device, samples: Sequence[DeviceSample]
    ) -> WindowCommit:
        """Merge ``samples`` into the window's object, write it, catalogue it.

        Raises:
            FlushFailed: the store or the catalog failed, or the stored
                object is unreadable; nothing is acknowledged, so the
                broker redelivers and the next flush tries again.
        """
        log_id = self.log_id(window)
        ref = self._layout.raw_csv(
            device.rider_id, device.suit_id, window.start.date(), log_id
        )
        where = str(ref)
        try:
            rows = self._existing(ref.bucket, ref.key)
        except (StorageError, ValueError) as exc:
            self._cache.pop(ref.key, None)
            raise FlushFailed(f"{where}: cannot read the window back: {exc}") from exc

        result = WindowCommit(key=where)
        for sample in samples:
            row = {column: format_value(v) for column, v in sample.values.items()}
            stored = rows.get(sample.t_us)
            if stored is None:
                rows[sample.t_us] = row
                result.added += 1
            elif stored == row:
                result.repeats += 1
            else:
                result.conflicts.append(sample)
        if not rows or (result.added == 0 and ref.key in self._cache):
            # Nothing new, and this process committed the object itself (a
            # window read back from the store is rewritten, in case the
            # worker died between writing it and cataloguing it).
            return result

        data = encode_window(rows)
        sha256_hex = hashlib.sha256(data).hexdigest()
        first, last = min(rows), max(rows)
        metadata = ObjectMetadata(
            sha256_hex=sha256_hex,
            log_id=log_id,
            suit_id=device.suit_id,
            rider_id=device.rider_id,
            kind=OBJECT_TYPE,
            log_start_utc=_time(first).isoformat(),
            log_end_utc=_time(last).isoformat(),
            sample_count=len(rows),
            software_version=SOFTWARE_VERSION,
            extra={"device-id": device.device_id},
        )
        try:
            rider = self._catalog.get_rider(device.rider_id)
            self._store.put_object(
                ref.bucket,
                ref.key,
                data,
                metadata=metadata.to_s3(),
                checksum=BodyChecksum.of(data, self._checksum_mode),
                content_type="text/csv",
            )
            upsert = self._catalog.upsert_object(
                ObjectRecord(
                    bucket=ref.bucket,
                    key=ref.key,
                    kind=ObjectKind.RAW,
                    object_type=OBJECT_TYPE,
                    rider_id=device.rider_id,
                    suit_id=device.suit_id,
                    log_id=log_id,
                    sha256_hex=sha256_hex,
                    size_bytes=len(data),
                    user_type=None if rider is None else rider.user_type,
                    product=None if rider is None else rider.product,
                    log_start=_time(first),
                    log_end=_time(last),
                    software_version=SOFTWARE_VERSION,
                    sample_count=len(rows),
                )
            )
        except (StorageError, CatalogError) as exc:
            self._cache.pop(ref.key, None)
            raise FlushFailed(f"{where}: commit failed: {exc}") from exc
        result.outcome = upsert.outcome
        self._cache[ref.key] = rows
        self._cache.move_to_end(ref.key)
        while len(self._cache) > CACHED_WINDOWS:
            self._cache.popitem(last=False)
        _LOGGER.debug(
            "device %s: %s now %d samples (+%d, %d repeats, %d conflicts)",
            device.device_id,
            where,
            len(rows),
            result.added,
            result.repeats,
            len(result.conflicts),
        )
        return result
