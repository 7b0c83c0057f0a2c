"""What the catalog keeps about the life of data: audit, verdicts, jobs.

These records belong to the services that end or change data rather than
index it: the retention job and rider erasure delete objects and leave an
:class:`AuditEntry` for each deletion (the audit outlives the data it
describes, so it names the object, never its contents); R&D and technicians
record a :class:`CrashVerdictRecord` per detected crash (the label the
federated training uses and the gateway is told about); a background
:class:`JobRecord` tracks one asynchronous request, such as calculating the
analytics of an archived log.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import math
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from .errors import InvalidRecord
from .models import CatalogObject, check_identifier

__all__ = [
    "AuditAction",
    "AuditEntry",
    "CrashVerdictRecord",
    "JobRecord",
    "JobState",
    "Verdict",
]

# Longest free-text detail an audit entry or a job error keeps.
MAX_DETAIL_CHARS = 4000


class AuditAction(StrEnum):
    """Why data was deleted or changed."""

    RETENTION_DELETE = "retention_delete"  # raw data past its window
    RETENTION_NOTICE = "retention_notice"  # the rider was told of a deletion
    ERASURE = "erasure"  # a rider's data erased on request
    RIDER_ERASED = "rider_erased"  # the rider's own records, last step
    EXPORT = "export"  # a rider's data exported
    CRASH_VERDICT = "crash_verdict"  # a crash confirmed or rejected
    CRASH_RELEASE = "crash_release"  # crash data no longer needed


class Verdict(StrEnum):
    """What R&D or a technician decided about a detected crash."""

    CONFIRMED = "confirmed"
    REJECTED = "rejected"


class JobState(StrEnum):
    """Where a background job is."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"

    @property
    def finished(self) -> bool:
        """Return whether the job will not change any more."""
        return self in (JobState.SUCCEEDED, JobState.FAILED)


def _clip(text: str | None) -> str | None:
    if text is None or len(text) <= MAX_DETAIL_CHARS:
        return text
    return text[: MAX_DETAIL_CHARS - 1] + "…"


@dataclass(frozen=True)
class AuditEntry:
    """One audited deletion or decision; ``audit_id`` and ``at`` once stored.

    ``actor`` is who did it (``retention``, ``admin:alice``, ``rider:r1``);
    the object fields are None for entries about a rider as a whole.
    """

    action: AuditAction
    actor: str
    rider_id: str | None = None
    suit_id: str | None = None
    log_id: str | None = None
    bucket: str | None = None
    key: str | None = None
    object_id: int | None = None
    sha256_hex: str | None = None
    size_bytes: int | None = None
    detail: str | None = None
    at: dt.datetime | None = None
    audit_id: int | None = None

    def validated(self) -> AuditEntry:
        """Return the entry with its action checked and detail clipped.

        Raises:
            InvalidRecord: an unknown action or an empty actor.
        """
        try:
            action = AuditAction(self.action)
        except ValueError as exc:
            raise InvalidRecord(f"audit entry: {exc}") from exc
        if not self.actor or len(self.actor) > 300:
            raise InvalidRecord(f"audit entry: actor {self.actor!r} must be 1-300")
        return AuditEntry(
            action=action,
            actor=self.actor,
            rider_id=self.rider_id,
            suit_id=self.suit_id,
            log_id=self.log_id,
            bucket=self.bucket,
            key=self.key,
            object_id=self.object_id,
            sha256_hex=self.sha256_hex,
            size_bytes=self.size_bytes,
            detail=_clip(self.detail),
            at=self.at,
            audit_id=self.audit_id,
        )

    def about(self, item: CatalogObject) -> AuditEntry:
        """Return the entry naming ``item`` (rider, suit, log, place, bytes)."""
        return dataclasses.replace(
            self,
            rider_id=item.rider_id,
            suit_id=item.suit_id,
            log_id=item.log_id,
            bucket=item.bucket,
            key=item.key,
            object_id=item.object_id,
            sha256_hex=item.sha256_hex,
            size_bytes=item.size_bytes,
        )


@dataclass(frozen=True)
class CrashVerdictRecord:
    """A verdict on a detected crash of one log, and where it was sent.

    ``command_id`` is the id of the ``crash_verdict`` command published to
    the gateway (so the gateway drops duplicates); ``published_at`` is None
    until the broker acknowledged it.
    """

    rider_id: str
    suit_id: str
    log_id: str
    verdict: Verdict
    actor: str
    command_id: str
    issued_at: dt.datetime
    t_offset_s: float | None = None
    gateway_id: str | None = None
    published_at: dt.datetime | None = None
    note: str | None = None

    def validated(self) -> CrashVerdictRecord:
        """Return the verdict after checking its fields.

        Raises:
            InvalidRecord: a malformed id, verdict or offset.
        """
        for name in ("rider_id", "suit_id", "log_id"):
            check_identifier(name, getattr(self, name))
        if self.gateway_id is not None:
            check_identifier("gateway_id", self.gateway_id)
        try:
            verdict = Verdict(self.verdict)
        except ValueError as exc:
            raise InvalidRecord(f"crash verdict of log {self.log_id!r}: {exc}") from exc
        if self.t_offset_s is not None and not (
            math.isfinite(self.t_offset_s) and self.t_offset_s >= 0
        ):
            raise InvalidRecord(
                f"crash verdict of log {self.log_id!r}: t_offset_s "
                f"{self.t_offset_s!r} must be a finite number >= 0"
            )
        return CrashVerdictRecord(
            rider_id=self.rider_id,
            suit_id=self.suit_id,
            log_id=self.log_id,
            verdict=verdict,
            actor=self.actor,
            command_id=self.command_id,
            issued_at=self.issued_at,
            t_offset_s=self.t_offset_s,
            gateway_id=self.gateway_id,
            published_at=self.published_at,
            note=_clip(self.note),
        )


@dataclass(frozen=True)
class JobRecord:
    """A background job: what it works on, its state, result or error.

    ``result`` is a small JSON document (object ids and keys written, the
    server-side seconds); ``error`` a message naming what failed.
    """

    job_id: str
    kind: str
    state: JobState
    requested_by: str
    rider_id: str
    suit_id: str
    source_bucket: str
    source_key: str
    created_at: dt.datetime
    updated_at: dt.datetime
    log_id: str | None = None
    result: dict[str, Any] | None = None
    error: str | None = None

    def result_json(self) -> str | None:
        """Return the result as stored (JSON text), or None."""
        return None if self.result is None else json.dumps(self.result, default=str)

    def with_error(self, error: str) -> JobRecord:
        """Return the job failed with ``error`` (clipped)."""
        return dataclasses.replace(self, state=JobState.FAILED, error=_clip(error))
