"""Crash verdicts and crash-data release, for R&D and technicians.

A detected crash (a log with a crash object or a crash flag) is confirmed
or rejected by a person. The verdict is stored in the catalog (it becomes
the log's training label; the newest verdict counts) and published to the
gateway that uploaded the log, on ``gateways/{gateway_id}/commands`` (QoS 1)
as a ``crash_verdict`` command (``gateway-command/1``)::

    {"schema": "gateway-command/1", "command_id": "<uuid4>",
     "type": "crash_verdict", "rider_id": ..., "suit_id": ..., "log_id": ...,
     "verdict": "confirmed" | "rejected", "t_offset_s": float | null,
     "issued_at": "<ISO 8601>"}

The gateway comes from the catalog (``objects.gateway_id``, written by
ingest from the event's topic) or, for objects catalogued without an event,
from a ``gateway-id`` key in the object's stored metadata. A verdict whose
gateway is unknown, or whose publish fails, is stored anyway and reported
as not published; sending it again publishes a new command.

Releasing crash data deletes the log's crash objects (store and catalog,
audited), once R&D no longer needs them; the raw and analytics objects of
the log stay, and a crash flag keeps the raw data out of retention.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from edge_agent.upload import BucketNames, BucketNotFound, ObjectLayout, ObjectStore

from ..broker.errors import BrokerError
from ..broker.topics import commands_topic
from ..catalog import (
    AuditAction,
    AuditEntry,
    Catalog,
    CatalogObject,
    CrashVerdictRecord,
    ObjectFilter,
    ObjectKind,
    Verdict,
    iter_pages,
)
from ..config import BrokerConfig

__all__ = [
    "COMMAND_SCHEMA",
    "CommandPublisher",
    "CrashLog",
    "VerdictOutcome",
    "find_crash_log",
    "issue_verdict",
    "release_crash_data",
    "verdict_command",
]

_LOGGER = logging.getLogger(__name__)

COMMAND_SCHEMA = "gateway-command/1"
# Metadata key a gateway may put on its objects naming itself.
GATEWAY_METADATA_KEY = "gateway-id"
# Objects of one log: raw, analytics, crash copies and windows; a page of
# this many is far more than one log ever has.
_LOG_PAGE = 200


class CommandPublisher(Protocol):
    """Publishes a JSON document and waits for the broker's acknowledgement."""

    def publish(
        self,
        topic: str,
        payload: Mapping[str, Any],
        qos: int = 1,
        retain: bool = False,
        *,
        timeout_s: float | None = None,
    ) -> None:
        """Publish ``payload`` on ``topic``; raise BrokerError on failure."""
        ...


@dataclass(frozen=True)
class CrashLog:
    """The catalogued objects of one log with a detected crash."""

    rider_id: str
    suit_id: str
    log_id: str
    objects: tuple[CatalogObject, ...]

    @property
    def crash_objects(self) -> list[CatalogObject]:
        """Return the objects in the crash bucket."""
        return [item for item in self.objects if item.kind is ObjectKind.CRASH]

    @property
    def gateway_id(self) -> str | None:
        """Return the gateway the catalog names for the log, if any."""
        for item in self.objects:
            if item.gateway_id:
                return item.gateway_id
        return None


@dataclass(frozen=True)
class VerdictOutcome:
    """A stored verdict and whether its command reached the broker."""

    record: CrashVerdictRecord
    published: bool
    publish_error: str | None


def find_crash_log(
    catalog: Catalog, within: ObjectFilter, log_id: str, suit_id: str | None = None
) -> CrashLog | None:
    """Return the crash log ``log_id`` within a scope, or None.

    None when no object of the log is visible, or none says crash. Should
    several suits share the log id, the newest is taken unless ``suit_id``
    names one (as for analytics).
    """
    query = ObjectFilter(
        rider_id=within.rider_id,
        technician_id=within.technician_id,
        log_id=log_id,
        suit_id=suit_id,
    )
    rows = list(
        iter_pages(
            lambda cursor: catalog.list_objects(query, limit=_LOG_PAGE, cursor=cursor),
            max_pages=10,
        )
    )
    if not rows:
        return None
    first = rows[0]
    same = tuple(
        row
        for row in rows
        if (row.rider_id, row.suit_id) == (first.rider_id, first.suit_id)
    )
    if not any(row.crash is True or row.kind is ObjectKind.CRASH for row in same):
        return None
    return CrashLog(first.rider_id, first.suit_id, log_id, same)


def _gateway_from_metadata(store: ObjectStore, log: CrashLog) -> str | None:
    for item in log.objects:
        info = store.head_object(item.bucket, item.key)
        if info is not None:
            value = {k.lower(): v for k, v in info.metadata.items()}.get(
                GATEWAY_METADATA_KEY
            )
            if value:
                return value
    return None


def verdict_command(record: CrashVerdictRecord) -> dict[str, Any]:
    """Return the ``crash_verdict`` gateway command of a verdict."""
    return {
        "schema": COMMAND_SCHEMA,
        "command_id": record.command_id,
        "type": "crash_verdict",
        "rider_id": record.rider_id,
        "suit_id": record.suit_id,
        "log_id": record.log_id,
        "verdict": str(record.verdict),
        "t_offset_s": record.t_offset_s,
        "issued_at": record.issued_at.isoformat(),
    }


def issue_verdict(
    catalog: Catalog,
    store: ObjectStore,
    publisher: CommandPublisher | None,
    broker: BrokerConfig,
    log: CrashLog,
    verdict: Verdict,
    *,
    actor: str,
    now: dt.datetime,
    t_offset_s: float | None = None,
    note: str | None = None,
) -> VerdictOutcome:
    """Store a verdict on ``log``'s crash and send it to its gateway.

    Raises:
        InvalidRecord: a malformed verdict or offset.
        CatalogError: the verdict could not be stored (nothing was sent).
    """
    gateway_id = log.gateway_id or _gateway_from_metadata(store, log)
    record = catalog.record_crash_verdict(
        CrashVerdictRecord(
            rider_id=log.rider_id,
            suit_id=log.suit_id,
            log_id=log.log_id,
            verdict=verdict,
            actor=actor,
            command_id=str(uuid.uuid4()),
            issued_at=now,
            t_offset_s=t_offset_s,
            gateway_id=gateway_id,
            note=note,
        )
    )
    where = f"log {log.log_id} (rider {log.rider_id}, suit {log.suit_id})"
    if gateway_id is None:
        reason = "no gateway is known for this log; the verdict is stored only"
    elif publisher is None:
        reason = "no broker is configured for the API; the verdict is stored only"
    else:
        topic = commands_topic(broker, gateway_id)
        try:
            publisher.publish(topic, verdict_command(record), qos=1)
        except BrokerError as exc:
            reason = f"publish to {topic} failed: {exc}"
        else:
            catalog.mark_verdict_published(record.command_id, now)
            _LOGGER.info(
                "%s: crash %s by %s, command %s sent to %s",
                where,
                verdict.value,
                actor,
                record.command_id,
                topic,
            )
            return VerdictOutcome(record, True, None)
    _LOGGER.warning("%s: crash %s by %s not sent: %s", where, verdict, actor, reason)
    return VerdictOutcome(record, False, reason)


def release_crash_data(
    catalog: Catalog,
    store: ObjectStore,
    buckets: BucketNames,
    log: CrashLog,
    *,
    actor: str,
) -> list[tuple[str, str]]:
    """Delete the crash objects of ``log``; return the ``(bucket, key)`` deleted.

    Catalogued crash objects go with their row in one audited step; stored
    files under the log's crash prefix the catalog does not index go too,
    each audited. Idempotent.

    Raises:
        CatalogError, StorageError: a step failed; run it again to finish.
    """
    deleted: list[tuple[str, str]] = []
    for item in log.crash_objects:
        gone = catalog.delete_object(
            item.object_id,
            AuditEntry(AuditAction.CRASH_RELEASE, actor, detail="released by R&D"),
            before_commit=lambda row: store.delete_object(row.bucket, row.key),
        )
        if gone is not None:
            deleted.append((gone.bucket, gone.key))
    prefix = ObjectLayout(buckets).crash_prefix(log.rider_id, log.suit_id, log.log_id)
    try:
        leftovers = store.list_objects(prefix.bucket, prefix=prefix.key)
    except BucketNotFound:
        leftovers = []
    for summary in leftovers:
        store.delete_object(prefix.bucket, summary.key)
        catalog.record_audit(
            AuditEntry(
                AuditAction.CRASH_RELEASE,
                actor,
                rider_id=log.rider_id,
                suit_id=log.suit_id,
                log_id=log.log_id,
                bucket=prefix.bucket,
                key=summary.key,
                size_bytes=summary.size_bytes,
                detail="released by R&D (object not catalogued)",
            )
        )
        deleted.append((prefix.bucket, summary.key))
    _LOGGER.info(
        "log %s (rider %s): %d crash objects released by %s",
        log.log_id,
        log.rider_id,
        len(deleted),
        actor,
    )
    return deleted
