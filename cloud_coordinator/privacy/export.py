"""Export everything stored about a rider as one tar stream.

The archive (``rider-export/1``) holds ``manifest.json`` first, then every
object under ``objects/{bucket}/{key}``:

* ``manifest.json``: the rider's registry record, every catalog row of
  theirs (raw, analytics, crash), the files of their on-premise archive
  uploads and other stored objects under their prefix that the catalog does
  not index, the newest crash verdict of each crash log, and the audit
  entries about them;
* the bytes of each object, as stored (gzip CSV, JSON, original files).

It is produced while it is sent, one object at a time through a scratch
file, so a rider's 100 GB of rides never sit in memory; the tar is
uncompressed because the big objects already are. Every export is audited.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import json
import logging
import os
import tarfile
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edge_agent.upload import BucketNames, BucketNotFound, ObjectStore

from ..catalog import (
    AuditAction,
    AuditEntry,
    Catalog,
    CatalogObject,
    ObjectFilter,
    check_identifier,
    iter_pages,
)

__all__ = [
    "EXPORT_SCHEMA",
    "ExportPlan",
    "iter_export",
    "plan_export",
    "stored_under_rider",
]

_LOGGER = logging.getLogger(__name__)

EXPORT_SCHEMA = "rider-export/1"
# Bytes read from a scratch file per chunk of the stream.
CHUNK_BYTES = 1024 * 1024
# Catalog pages read for one rider (1000 rows a page): ten million objects.
MAX_PAGES = 10_000
_BLOCK = tarfile.BLOCKSIZE


@dataclass(frozen=True)
class StoredFile:
    """An object under a rider's prefix: its bucket, key and size."""

    bucket: str
    key: str
    size_bytes: int


@dataclass(frozen=True)
class ExportPlan:
    """What an export holds, fixed before the first byte is sent."""

    rider_id: str
    manifest: dict[str, Any]
    files: list[StoredFile]


def _jsonable(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {key: _jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(item) for item in value]
    return str(value) if hasattr(value, "value") else value


def rider_objects(catalog: Catalog, rider_id: str) -> list[CatalogObject]:
    """Return every catalog row of a rider."""
    query = ObjectFilter(rider_id=rider_id)
    return list(
        iter_pages(
            lambda cursor: catalog.list_objects(query, limit=1000, cursor=cursor),
            MAX_PAGES,
        )
    )


def stored_under_rider(
    store: ObjectStore, buckets: BucketNames, rider_id: str
) -> list[StoredFile]:
    """Return every stored object whose key starts with ``{rider_id}/``.

    Every bucket's layout puts the rider first, so this finds what the
    catalog indexes and what it does not (archive uploads, leftovers).
    """
    found: list[StoredFile] = []
    for bucket in (buckets.raw, buckets.analytics, buckets.crash, buckets.archive):
        try:
            listing = store.list_objects(bucket, prefix=f"{rider_id}/")
        except BucketNotFound:
            continue
        found.extend(StoredFile(bucket, item.key, item.size_bytes) for item in listing)
    return found


def plan_export(
    catalog: Catalog,
    store: ObjectStore,
    buckets: BucketNames,
    rider_id: str,
    *,
    now: dt.datetime,
) -> ExportPlan:
    """Gather the manifest and the list of files of a rider's export.

    Raises:
        InvalidRecord: a malformed rider id.
        CatalogError, StorageError: the catalog or the store failed.
    """
    check_identifier("rider_id", rider_id)
    rider = catalog.get_rider(rider_id)
    rows = rider_objects(catalog, rider_id)
    files = {(f.bucket, f.key): f for f in stored_under_rider(store, buckets, rider_id)}
    for row in rows:
        files.setdefault((row.bucket, row.key), StoredFile(row.bucket, row.key, 0))
    verdicts = []
    for suit_id, log_id in sorted(
        {(row.suit_id, row.log_id) for row in rows if row.crash}
    ):
        verdict = catalog.get_crash_verdict(rider_id, suit_id, log_id)
        if verdict is not None:
            verdicts.append(dataclasses.asdict(verdict))
    audit = list(
        iter_pages(
            lambda cursor: catalog.list_audit(
                rider_id=rider_id, limit=1000, cursor=cursor
            ),
            MAX_PAGES,
        )
    )
    catalogued = {(row.bucket, row.key) for row in rows}
    manifest = {
        "schema": EXPORT_SCHEMA,
        "rider_id": rider_id,
        "exported_at": now.isoformat(),
        "rider": None if rider is None else dataclasses.asdict(rider),
        "objects": [dataclasses.asdict(row) for row in rows],
        "uncatalogued_files": [
            dataclasses.asdict(f)
            for key, f in sorted(files.items())
            if key not in catalogued
        ],
        "crash_verdicts": verdicts,
        "audit": [dataclasses.asdict(entry) for entry in audit],
        "layout": "objects/{bucket}/{key} holds each object's bytes as stored",
    }
    return ExportPlan(rider_id, _jsonable(manifest), sorted(files.values(), key=_key))


def _key(item: StoredFile) -> tuple[str, str]:
    return (item.bucket, item.key)


def _header(name: str, size_bytes: int, mtime: float) -> bytes:
    info = tarfile.TarInfo(name)
    info.size = size_bytes
    info.mtime = int(mtime)
    info.mode = 0o644
    return info.tobuf(format=tarfile.PAX_FORMAT, encoding="utf-8")


def _padding(size_bytes: int) -> bytes:
    return b"\0" * (-size_bytes % _BLOCK)


def iter_export(
    catalog: Catalog,
    store: ObjectStore,
    plan: ExportPlan,
    *,
    actor: str,
    scratch_dir: Path | None = None,
) -> Iterator[bytes]:
    """Yield the tar archive of ``plan``, one chunk at a time.

    The export is audited before the first chunk. An object deleted since
    the plan was made is left out (the manifest still lists its row).

    Raises:
        StorageError: the store failed mid-way (the stream then ends early,
            and a client sees a truncated archive).
    """
    catalog.record_audit(
        AuditEntry(
            AuditAction.EXPORT,
            actor,
            rider_id=plan.rider_id,
            detail=json.dumps({"files": len(plan.files)}),
        )
    )
    mtime = dt.datetime.now(dt.UTC).timestamp()
    manifest = json.dumps(plan.manifest, indent=1, sort_keys=True).encode()
    yield _header("manifest.json", len(manifest), mtime) + manifest
    yield _padding(len(manifest))
    for item in plan.files:
        handle, scratch = tempfile.mkstemp(prefix="export-", dir=scratch_dir)
        os.close(handle)
        path = Path(scratch)
        try:
            if store.head_object(item.bucket, item.key) is None:
                _LOGGER.warning(
                    "rider %s: export skips %s/%s, deleted since the plan",
                    plan.rider_id,
                    item.bucket,
                    item.key,
                )
                continue
            store.download_file(item.bucket, item.key, path)
            size_bytes = path.stat().st_size
            yield _header(f"objects/{item.bucket}/{item.key}", size_bytes, mtime)
            with open(path, "rb") as source:
                yield from iter(lambda: source.read(CHUNK_BYTES), b"")
            yield _padding(size_bytes)
        finally:
            path.unlink(missing_ok=True)
    yield b"\0" * (2 * _BLOCK)
    _LOGGER.info(
        "rider %s: exported %d files for %s", plan.rider_id, len(plan.files), actor
    )


def write_export(stream: Iterator[bytes], target: io.BufferedIOBase) -> int:
    """Write an export stream to ``target``; return the bytes written."""
    written = 0
    for chunk in stream:
        target.write(chunk)
        written += len(chunk)
    return written
