"""The catalog interface every backend implements.

Callers depend on this Protocol only: the results API reads through it,
ingest and reconciliation write through :meth:`Catalog.upsert_object`. Two
backends implement it on the same SQL (:mod:`.sqlbase`): SQLite, the
embedded default, and PostgreSQL for production.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Protocol

from .device_registry import Device
from .fl_records import FederatedRound, FederatedRun, RunState, TrainingConsent
from .ingestlog import IngestedEvent, QuarantineEntry
from .lifecycle import AuditEntry, CrashVerdictRecord, JobRecord
from .model_registry import ModelRelease, ModelRollout
from .models import (
    CatalogObject,
    ObjectFilter,
    ObjectRecord,
    Page,
    Rider,
    UpsertResult,
)
from .outbox import Notification, NotificationAudience, NotificationType

__all__ = ["MAX_PAGE_LIMIT", "Catalog"]

# Hard upper bound on one page, whatever a caller asks: a page of 1000
# objects is about 600 kB of JSON, the most a client should get in one go.
MAX_PAGE_LIMIT = 1000


class Catalog(Protocol):
    """Index of stored objects and riders; see the module docstring."""

    @property
    def name(self) -> str:
        """Return a short description for log lines (backend and location)."""
        ...

    def migrate(self) -> list[int]:
        """Apply pending schema migrations; return the versions applied.

        Safe to call at every start and from several processes at once: the
        migrations run in one transaction under a lock.

        Raises:
            CatalogSchemaError: a migration failed (nothing of it is kept),
                or the database has a version this software does not know.
            CatalogUnavailable: the database cannot be reached.
        """
        ...

    def schema_version(self) -> int:
        """Return the highest applied migration version (0: none)."""
        ...

    def ping(self) -> None:
        """Check the database answers a query.

        Raises:
            CatalogUnavailable: it does not.
        """
        ...

    def upsert_object(self, record: ObjectRecord) -> UpsertResult:
        """Index ``record`` idempotently by bucket and key.

        The same bucket, key, SHA-256 and metadata again changes nothing
        (``unchanged``). The same SHA-256 with metadata learnt since (a crash
        verdict, the user type) updates the row (``updated``); a field left
        None keeps its stored value. A new SHA-256 for a known key means the
        object was overwritten (``replaced``). The row keeps its id and first
        catalogued time, and its retention date is recomputed from that time.

        Raises:
            InvalidRecord: a malformed field.
            CatalogUnavailable: the database cannot be reached.
        """
        ...

    def get_object(
        self, object_id: int, within: ObjectFilter | None = None
    ) -> CatalogObject | None:
        """Return an object by id if it also matches ``within`` (a scope)."""
        ...

    def get_object_by_key(self, bucket: str, key: str) -> CatalogObject | None:
        """Return the object stored at ``bucket``/``key``, if catalogued."""
        ...

    def list_objects(
        self, query: ObjectFilter, *, limit: int, cursor: str | None = None
    ) -> Page[CatalogObject]:
        """Return one page of matching objects, newest ``sort_time`` first.

        ``limit`` is clamped to 1..``MAX_PAGE_LIMIT``. Pass the returned
        ``next_cursor`` with the same ``query`` to get the next page.

        Raises:
            InvalidCursor: the cursor is malformed or from another query.
            InvalidRecord: a malformed filter value.
        """
        ...

    def get_log_analytics(
        self, log_id: str, within: ObjectFilter | None = None
    ) -> CatalogObject | None:
        """Return the analytics object of a log within a scope, if any.

        Should several suits share the log id, the newest one is returned;
        pass ``suit_id`` in ``within`` to pick one.
        """
        ...

    def upsert_rider(self, rider: Rider) -> Rider:
        """Create or update a rider (user type, product, technician).

        The rider's catalogued objects take the new user type (and product,
        when given) in the same transaction, and their retention dates are
        recomputed: a rider who becomes professional keeps raw data that
        was due to expire, one who becomes private gets the usual window
        counted from each object's first catalogued time.

        Raises:
            InvalidRecord: a malformed field.
        """
        ...

    def get_rider(self, rider_id: str) -> Rider | None:
        """Return a rider, or None if unknown."""
        ...

    def list_riders(
        self,
        *,
        technician_id: str | None = None,
        limit: int,
        cursor: str | None = None,
    ) -> Page[Rider]:
        """Return riders ordered by id.

        With ``technician_id``, only the professional riders assigned to
        that technician.

        Raises:
            InvalidCursor: the cursor is malformed or from another query.
        """
        ...

    # -- notification outbox (see .outbox) ------------------------------------

    def add_notification(self, notification: Notification) -> bool:
        """Store a notification; return False if its id was already stored.

        Raises:
            InvalidRecord: a malformed field.
            CatalogUnavailable: the database cannot be reached.
        """
        ...

    def notification_seq(self, notification_id: str) -> int | None:
        """Return the sequence number of a stored notification, if any."""
        ...

    def last_notification_seq(self) -> int:
        """Return the highest notification sequence number (0: none)."""
        ...

    def list_notifications(
        self, audience: NotificationAudience | None, *, after_seq: int, limit: int
    ) -> list[Notification]:
        """Return ``audience``'s notifications after ``after_seq``, oldest first.

        ``audience`` None: every notification.
        """
        ...

    def list_unpublished_notifications(
        self, types: Sequence[NotificationType], *, limit: int
    ) -> list[Notification]:
        """Return notifications of ``types`` not yet published on MQTT."""
        ...

    def publish_notifications(
        self,
        types: Sequence[NotificationType],
        publish: Callable[[Notification], None],
        at: dt.datetime,
        *,
        limit: int,
    ) -> int:
        """Call ``publish`` for unpublished notifications and mark them; count.

        Concurrent callers take different notifications; if ``publish``
        raises, nothing of the batch is marked.
        """
        ...

    def mark_notifications_published(
        self, notification_ids: Sequence[str], at: dt.datetime
    ) -> int:
        """Record notifications as published on MQTT; return how many changed."""
        ...

    # -- ingest log and quarantine (see .ingestlog) ----------------------------

    def ingest_event_seen(self, event_id: str) -> bool:
        """Return whether the gateway event was already catalogued."""
        ...

    def record_ingest_event(
        self, event: IngestedEvent, notifications: Sequence[Notification] = ()
    ) -> bool:
        """Record a catalogued event and its notifications in one transaction.

        Returns False (storing nothing) if the event was recorded before.

        Raises:
            InvalidRecord: a malformed notification.
            CatalogUnavailable: the database cannot be reached.
        """
        ...

    def quarantine(self, entry: QuarantineEntry, at: dt.datetime) -> int:
        """Keep bad input aside; return its id (a repeat counts a sighting)."""
        ...

    def list_quarantine(self, *, limit: int) -> list[QuarantineEntry]:
        """Return quarantined inputs, most recently seen first."""
        ...

    def existing_object_keys(self, bucket: str, keys: Sequence[str]) -> set[str]:
        """Return which of ``keys`` in ``bucket`` are catalogued."""
        ...

    # -- audit, retention, verdicts, jobs (see .lifecycle_sql) ----------------

    def record_audit(self, entry: AuditEntry) -> None:
        """Append an audit entry.

        Raises:
            InvalidRecord: an unknown action or an empty actor.
        """
        ...

    def list_audit(
        self, *, rider_id: str | None = None, limit: int, cursor: str | None = None
    ) -> Page[AuditEntry]:
        """Return audit entries oldest first, optionally of one rider.

        Raises:
            InvalidCursor: the cursor is malformed or from another query.
        """
        ...

    def delete_object(
        self,
        object_id: int,
        audit: AuditEntry,
        *,
        expired_at: dt.datetime | None = None,
        before_commit: Callable[[CatalogObject], None] | None = None,
    ) -> CatalogObject | None:
        """Delete an object's row and audit it in one transaction.

        With ``expired_at``, only if the retention policy still lets the
        object go then and its current retention date was announced (a
        retention notice recorded for it). ``before_commit`` runs inside
        the transaction with the row (to delete the stored bytes); if it
        raises, nothing is deleted. Returns the deleted row, or None if
        there was none to go.
        """
        ...

    def list_expired_raw(
        self,
        now: dt.datetime,
        *,
        limit: int,
        after: tuple[dt.datetime, int] | None = None,
    ) -> list[CatalogObject]:
        """Return raw objects whose window closed by ``now`` and that may go.

        Only objects whose current retention date was announced are listed.
        Ordered by ``(retention_until, object_id)``; pass the last row's
        pair as ``after`` for the next page.
        """
        ...

    def list_retention_notices_due(
        self,
        now: dt.datetime,
        notify_until: dt.datetime,
        *,
        limit: int,
        after: tuple[dt.datetime, int] | None = None,
    ) -> list[CatalogObject]:
        """Return raw objects due by ``notify_until`` whose date is unannounced.

        Includes objects whose date passed already without a notice.
        """
        ...

    def mark_retention_notified(
        self, objects: Iterable[CatalogObject], at: dt.datetime
    ) -> int:
        """Record that each object's deletion date was announced at ``at``.

        ``retention_until`` of each object is the announced date; a stored
        date that is earlier is pushed forward to it. Each notice is audited.
        """
        ...

    def record_crash_verdict(self, verdict: CrashVerdictRecord) -> CrashVerdictRecord:
        """Store a crash verdict (the newest of a log counts) and audit it.

        Raises:
            InvalidRecord: a malformed id, verdict or offset.
        """
        ...

    def mark_verdict_published(self, command_id: str, at: dt.datetime) -> None:
        """Record that the broker acknowledged a verdict's command."""
        ...

    def get_crash_verdict(
        self, rider_id: str, suit_id: str, log_id: str
    ) -> CrashVerdictRecord | None:
        """Return the newest verdict on a log's crash, or None."""
        ...

    def insert_job(self, job: JobRecord) -> JobRecord:
        """Store a new background job."""
        ...

    def update_job(self, job: JobRecord) -> JobRecord:
        """Store a job's state, log id, result or error."""
        ...

    def get_job(self, job_id: str) -> JobRecord | None:
        """Return a job by id, or None."""
        ...

    def erase_rider_records(self, rider_id: str, actor: str) -> dict[str, int]:
        """Delete a rider's registry row, verdicts, jobs and notices; audit it.

        Returns the rows deleted per table; the audit log is kept.
        """
        ...

    def upsert_device(self, device: Device) -> Device:
        """Register an online device for a rider (or move it); return the row.

        Raises:
            InvalidRecord: a malformed id.
        """
        ...

    def get_device(self, device_id: str) -> Device | None:
        """Return a registered device, or None if unknown."""
        ...

    def list_devices(self, rider_id: str | None = None) -> list[Device]:
        """Return every registered device (one rider's only), by id."""
        ...

    # -- federated runs, rounds, training consent (see .fl_sql) ----------------

    def create_fl_run(self, run: FederatedRun) -> FederatedRun:
        """Record a new federated run; return it with its times.

        Raises:
            InvalidRecord: a malformed field, or the run key exists.
        """
        ...

    def update_fl_run(
        self,
        run_key: str,
        *,
        state: RunState,
        flower_run_id: int | None = None,
        detail: str | None = None,
        result: dict[str, Any] | None = None,
    ) -> FederatedRun | None:
        """Set a run's state and the fields given; a finished run stays finished."""
        ...

    def get_fl_run(self, run_key: str) -> FederatedRun | None:
        """Return one federated run, None if unknown."""
        ...

    def list_fl_runs(self, *, limit: int = 50) -> list[FederatedRun]:
        """Return the newest federated runs first."""
        ...

    def record_fl_round(self, record: FederatedRound) -> FederatedRound:
        """Store a round's outcome, replacing an earlier record of it.

        Raises:
            InvalidRecord: a malformed field or an unknown run.
        """
        ...

    def list_fl_rounds(self, run_key: str) -> list[FederatedRound]:
        """Return a run's rounds in order."""
        ...

    def set_training_consent(self, consent: TrainingConsent) -> TrainingConsent:
        """Store a rider's training choice, unpublished.

        Raises:
            InvalidRecord: a malformed rider id or command id.
        """
        ...

    def get_training_consent(self, rider_id: str) -> TrainingConsent | None:
        """Return a rider's stored training choice, None if never given."""
        ...

    def mark_consent_published(self, rider_id: str, command_id: str) -> bool:
        """Record that ``command_id`` reached the broker; False if superseded."""
        ...

    def rider_gateways(self, rider_id: str) -> list[str]:
        """Return the gateways that uploaded a rider's data, by id."""
        ...

    def list_unpublished_consents(self, *, limit: int = 100) -> list[TrainingConsent]:
        """Return choices not yet published to the riders' gateways, oldest first."""
        ...

    # -- model releases and roll-outs (see .model_registry) -------------------

    def record_model_release(self, release: ModelRelease) -> ModelRelease:
        """Record a published model version (again: update it); return it stored.

        Raises:
            InvalidRecord: a missing name or version, a malformed SHA-256.
        """
        ...

    def list_model_releases(self, model_name: str) -> list[ModelRelease]:
        """Return the recorded versions of a model, oldest publication first."""
        ...

    def record_model_rollout(self, rollout: ModelRollout) -> ModelRollout:
        """Record one roll-out step (again: update it); return it stored.

        Raises:
            InvalidRecord: an unknown stage or a sequence below 1.
        """
        ...

    def get_model_rollout(self, model_name: str) -> ModelRollout | None:
        """Return the newest roll-out step of a model, None before the first."""
        ...

    def close(self) -> None:
        """Release every connection."""
        ...
