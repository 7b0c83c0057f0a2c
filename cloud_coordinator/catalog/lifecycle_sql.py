"""Audit, retention queries, crash verdicts and jobs on the shared SQL.

A mixin of :class:`~.sqlbase.SqlCatalog` (schema migration 3), written once
for SQLite and PostgreSQL with the catalog's :class:`~.sql.Dialect`.

Deleting an object and auditing it happen in one transaction; the caller
may pass ``before_commit`` to delete the stored bytes inside it, so either
the bytes and the row are gone and the audit says so, or nothing changed
(a store delete is idempotent, so a commit that fails after it is simply
retried). The retention guard re-applies the policy inside that
transaction: a log whose crash was learnt, or a rider who became
professional, since the listing is never deleted.

Raw data is never deleted unannounced: an object may go only when a
retention notice was recorded for its current retention date (a date
changed since, by a re-upload or a rider update, must be announced again).
Recording a notice pushes the object's retention date, and so its download
window, forward to the announced date when that is later.
"""

from __future__ import annotations

import datetime as dt
import json
from abc import abstractmethod
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

from .cursor import decode_cursor, encode_cursor
from .lifecycle import (
    AuditAction,
    AuditEntry,
    CrashVerdictRecord,
    JobRecord,
    JobState,
    Verdict,
)
from .models import CatalogObject, Page, check_identifier
from .sql import OBJECT_COLUMNS, Dialect, object_from_row

if TYPE_CHECKING:
    from .sqlbase import DbCursor

__all__ = ["LifecycleSql"]

_AUDIT_COLUMNS = (
    "audit_id",
    "audited_at",
    "action",
    "actor",
    "rider_id",
    "suit_id",
    "log_id",
    "bucket",
    "object_key",
    "object_id",
    "sha256",
    "size_bytes",
    "detail",
)
_VERDICT_COLUMNS = (
    "rider_id",
    "suit_id",
    "log_id",
    "verdict",
    "actor",
    "command_id",
    "issued_at",
    "t_offset_s",
    "gateway_id",
    "published_at",
    "note",
)
_JOB_COLUMNS = (
    "job_id",
    "kind",
    "state",
    "requested_by",
    "rider_id",
    "suit_id",
    "source_bucket",
    "source_key",
    "created_at",
    "updated_at",
    "log_id",
    "result",
    "error",
)
# Tables with a rider_id column whose rows erasure deletes (the audit log
# is kept on purpose; objects are deleted one by one, with their audit).
_RIDER_TABLES = (
    "crash_verdicts",
    "jobs",
    "retention_notices",
    "notifications",
    "ingest_events",
    "riders",
)
_O_COLUMNS = ", ".join(f"o.{column}" for column in OBJECT_COLUMNS)
# The retention policy, re-applied in SQL: raw, dated, no crash known for the
# log in any of its objects, rider not professional (by row or registry).
_POLICY = """
    o.kind = 'raw' AND o.retention_until IS NOT NULL
    AND o.crash IS NOT TRUE
    AND (o.user_type IS NULL OR o.user_type <> 'professional')
    AND NOT EXISTS (
        SELECT 1 FROM objects c WHERE c.rider_id = o.rider_id
        AND c.suit_id = o.suit_id AND c.log_id = o.log_id
        AND (c.kind = 'crash' OR c.crash IS TRUE))
    AND NOT EXISTS (
        SELECT 1 FROM riders r WHERE r.rider_id = o.rider_id
        AND r.user_type = 'professional')
"""
# Deletion also needs the rider told of the current date (see module doc).
_ANNOUNCED = """
    EXISTS (
        SELECT 1 FROM retention_notices n WHERE n.object_id = o.object_id
        AND n.retention_until = o.retention_until)
"""


class LifecycleSql:
    """Audit, retention, verdict and job methods of the SQL catalog."""

    _dialect: Dialect
    # Who the audit log names for recorded retention notices.
    _notice_actor = "retention"

    @abstractmethod
    def _transaction(self, *, write: bool) -> AbstractContextManager[Any]:
        """Return a context that runs one transaction and yields its cursor."""

    @abstractmethod
    def _now(self) -> dt.datetime:
        """Return the catalog clock's time in UTC."""

    @abstractmethod
    def _p(self, name: str) -> str:
        """Return the placeholder of parameter ``name``."""

    def _insert(self, cursor: DbCursor, table: str, values: dict[str, Any]) -> None:
        cursor.execute(
            f"INSERT INTO {table} ({', '.join(values)}) VALUES "
            f"({', '.join(self._p(name) for name in values)})",
            values,
        )

    # -- audit ----------------------------------------------------------------

    def _audit_values(self, entry: AuditEntry, at: dt.datetime) -> dict[str, Any]:
        return {
            "audited_at": self._dialect.time_in(at),
            "action": str(entry.action),
            "actor": entry.actor,
            "rider_id": entry.rider_id,
            "suit_id": entry.suit_id,
            "log_id": entry.log_id,
            "bucket": entry.bucket,
            "object_key": entry.key,
            "object_id": entry.object_id,
            "sha256": entry.sha256_hex,
            "size_bytes": entry.size_bytes,
            "detail": entry.detail,
        }

    def _audit_from_row(self, row: Any) -> AuditEntry:
        values = dict(zip(_AUDIT_COLUMNS, row, strict=True))
        return AuditEntry(
            action=AuditAction(values["action"]),
            actor=values["actor"],
            rider_id=values["rider_id"],
            suit_id=values["suit_id"],
            log_id=values["log_id"],
            bucket=values["bucket"],
            key=values["object_key"],
            object_id=None if values["object_id"] is None else int(values["object_id"]),
            sha256_hex=values["sha256"],
            size_bytes=None
            if values["size_bytes"] is None
            else int(values["size_bytes"]),
            detail=values["detail"],
            at=self._dialect.time_out(values["audited_at"]),
            audit_id=int(values["audit_id"]),
        )

    def record_audit(self, entry: AuditEntry) -> None:
        """Append an audit entry."""
        entry = entry.validated()
        with self._transaction(write=True) as cursor:
            self._insert(cursor, "audit_log", self._audit_values(entry, self._now()))

    def list_audit(
        self, *, rider_id: str | None = None, limit: int, cursor: str | None = None
    ) -> Page[AuditEntry]:
        """Return audit entries oldest first, optionally of one rider."""
        limit = max(1, min(int(limit), 1000))
        fingerprint = f"audit:{rider_id!r}"
        params: dict[str, Any] = {"limit": limit + 1}
        conditions = []
        if rider_id is not None:
            params["rider_id"] = check_identifier("rider_id", rider_id)
            conditions.append(f"rider_id = {self._p('rider_id')}")
        if cursor is not None:
            (after,) = decode_cursor(cursor, fingerprint, (int,))
            params["after"] = int(after)
            conditions.append(f"audit_id > {self._p('after')}")
        where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
        with self._transaction(write=False) as db:
            db.execute(
                f"SELECT {', '.join(_AUDIT_COLUMNS)} FROM audit_log{where} "
                f"ORDER BY audit_id LIMIT {self._p('limit')}",
                params,
            )
            rows = db.fetchall()
        entries = [self._audit_from_row(row) for row in rows[:limit]]
        next_cursor = None
        if len(rows) > limit and entries[-1].audit_id is not None:
            next_cursor = encode_cursor(fingerprint, (entries[-1].audit_id,))
        return Page(entries, next_cursor)

    # -- deleting objects -------------------------------------------------------

    def delete_object(
        self,
        object_id: int,
        audit: AuditEntry,
        *,
        expired_at: dt.datetime | None = None,
        before_commit: Callable[[CatalogObject], None] | None = None,
    ) -> CatalogObject | None:
        """Delete an object's row and record ``audit`` for it, atomically.

        The audit entry gets the object's rider, suit, log, bucket, key,
        SHA-256 and size. With ``expired_at`` the row is deleted only if the
        retention policy still lets it go at that time and its current
        retention date was announced to the rider. ``before_commit``
        runs inside the transaction with the row (to delete the stored
        bytes); an exception from it undoes everything.

        Returns:
            The deleted row, or None when it was already gone (or, with
            ``expired_at``, is no longer due); nothing is audited then.
        """
        entry = audit.validated()
        params: dict[str, Any] = {"object_id": int(object_id)}
        condition = f"o.object_id = {self._p('object_id')}"
        if expired_at is not None:
            params["now"] = self._dialect.time_in(expired_at)
            condition += (
                f" AND {_POLICY} AND {_ANNOUNCED} "
                f"AND o.retention_until <= {self._p('now')}"
            )
        with self._transaction(write=True) as cursor:
            cursor.execute(
                f"SELECT {_O_COLUMNS} FROM objects o WHERE {condition}"
                + self._dialect.for_update,
                params,
            )
            row = cursor.fetchone()
            if row is None:
                return None
            item = object_from_row(self._dialect, row)
            cursor.execute(
                f"DELETE FROM objects WHERE object_id = {self._p('object_id')}",
                {"object_id": item.object_id},
            )
            cursor.execute(
                "DELETE FROM retention_notices WHERE object_id = "
                f"{self._p('object_id')}",
                {"object_id": item.object_id},
            )
            described = entry.about(item)
            self._insert(
                cursor, "audit_log", self._audit_values(described, self._now())
            )
            if before_commit is not None:
                before_commit(item)
        return item

    # -- retention ------------------------------------------------------------

    def _policy_select(
        self,
        extra: str,
        params: dict[str, Any],
        limit: int,
        after: tuple[dt.datetime, int] | None,
    ) -> list[CatalogObject]:
        params["limit"] = max(1, int(limit))
        if after is not None:
            extra += (
                f" AND (o.retention_until, o.object_id) > "
                f"({self._p('after_t')}, {self._p('after_id')})"
            )
            params["after_t"] = self._dialect.time_in(after[0])
            params["after_id"] = int(after[1])
        with self._transaction(write=False) as cursor:
            cursor.execute(
                f"SELECT {_O_COLUMNS} FROM objects o WHERE {_POLICY} AND {extra} "
                f"ORDER BY o.retention_until, o.object_id LIMIT {self._p('limit')}",
                params,
            )
            rows = cursor.fetchall()
        return [object_from_row(self._dialect, row) for row in rows]

    def list_expired_raw(
        self,
        now: dt.datetime,
        *,
        limit: int,
        after: tuple[dt.datetime, int] | None = None,
    ) -> list[CatalogObject]:
        """Return raw objects whose window closed by ``now`` and may go.

        The policy is applied again here, not only through the stored
        retention date: no object of the log says crash, and the rider is
        not professional. An object whose current date was not announced
        (no notice recorded for it) is not listed: it waits for its notice.
        Ordered by ``(retention_until, object_id)``; ``after`` (the last
        row's pair) returns the next page.
        """
        return self._policy_select(
            f"o.retention_until <= {self._p('now')} AND {_ANNOUNCED}",
            {"now": self._dialect.time_in(now)},
            limit,
            after,
        )

    def list_retention_notices_due(
        self,
        now: dt.datetime,
        notify_until: dt.datetime,
        *,
        limit: int,
        after: tuple[dt.datetime, int] | None = None,
    ) -> list[CatalogObject]:
        """Return raw objects due to go by ``notify_until`` not yet announced.

        An object counts as announced when a notice was recorded for its
        current retention date (a changed date is announced again). Objects
        whose date passed already (``<= now``) without a notice, because the
        job did not run in their notice window, are listed too: they must
        be announced before they may go. ``now`` is kept for the interface.
        Paged like :meth:`list_expired_raw`.
        """
        del now  # a date already past is due for its notice as well
        return self._policy_select(
            f"o.retention_until <= {self._p('until')} AND NOT {_ANNOUNCED}",
            {"until": self._dialect.time_in(notify_until)},
            limit,
            after,
        )

    def _keep_announced(
        self, cursor: DbCursor, object_id: int, retention: dt.datetime | None
    ) -> dt.datetime | None:
        """Return ``retention``, or the later date the rider was told of.

        A recomputed retention date (re-upload, rider update) never closes
        the download window before the announced deletion date; None (data
        kept) stays None.
        """
        if retention is None:
            return None
        cursor.execute(
            "SELECT retention_until FROM retention_notices "
            f"WHERE object_id = {self._p('object_id')}",
            {"object_id": int(object_id)},
        )
        row = cursor.fetchone()
        announced = None if row is None else self._dialect.time_out(row[0])
        if announced is not None and announced > retention:
            return announced
        return retention

    def mark_retention_notified(
        self, objects: Iterable[CatalogObject], at: dt.datetime
    ) -> int:
        """Record each object's announced deletion date; return the count.

        ``item.retention_until`` is the date the rider was told (the
        effective deletion date) and ``at`` when. An object whose stored
        retention date is earlier is pushed forward to the announced date,
        so its download window stays open until then; a stored date that is
        later is kept and recorded as the announced one (the data stays
        longer than announced, never shorter). Each notice is also written
        to the audit log (``retention_notice``), which outlives the object
        and its notice row.
        """
        count = 0
        with self._transaction(write=True) as cursor:
            for item in objects:
                if item.retention_until is None:
                    continue
                until = item.retention_until
                cursor.execute(
                    "SELECT retention_until FROM objects WHERE object_id = "
                    f"{self._p('object_id')}" + self._dialect.for_update,
                    {"object_id": item.object_id},
                )
                row = cursor.fetchone()
                stored = None if row is None else self._dialect.time_out(row[0])
                if stored is not None and stored > until:
                    until = stored
                elif stored is not None and stored < until:
                    cursor.execute(
                        "UPDATE objects SET retention_until = "
                        f"{self._p('until')} WHERE object_id = "
                        f"{self._p('object_id')}",
                        {
                            "object_id": item.object_id,
                            "until": self._dialect.time_in(until),
                        },
                    )
                cursor.execute(
                    "INSERT INTO retention_notices (object_id, rider_id, "
                    "retention_until, notified_at) VALUES "
                    f"({self._p('object_id')}, {self._p('rider_id')}, "
                    f"{self._p('until')}, {self._p('at')}) "
                    "ON CONFLICT (object_id) DO UPDATE SET "
                    "retention_until = excluded.retention_until, "
                    "notified_at = excluded.notified_at",
                    {
                        "object_id": item.object_id,
                        "rider_id": item.rider_id,
                        "until": self._dialect.time_in(until),
                        "at": self._dialect.time_in(at),
                    },
                )
                audit = (
                    AuditEntry(
                        AuditAction.RETENTION_NOTICE,
                        self._notice_actor,
                        detail=f"rider told at {at.isoformat()}: deleted after "
                        f"{until.isoformat()}",
                    )
                    .about(item)
                    .validated()
                )
                self._insert(
                    cursor, "audit_log", self._audit_values(audit, self._now())
                )
                count += 1
        return count

    # -- crash verdicts ---------------------------------------------------------

    def _verdict_from_row(self, row: Any) -> CrashVerdictRecord:
        values = dict(zip(_VERDICT_COLUMNS, row, strict=True))
        issued = self._dialect.time_out(values["issued_at"])
        assert issued is not None
        offset = values["t_offset_s"]
        return CrashVerdictRecord(
            rider_id=values["rider_id"],
            suit_id=values["suit_id"],
            log_id=values["log_id"],
            verdict=Verdict(values["verdict"]),
            actor=values["actor"],
            command_id=values["command_id"],
            issued_at=issued,
            t_offset_s=None if offset is None else float(offset),
            gateway_id=values["gateway_id"],
            published_at=self._dialect.time_out(values["published_at"]),
            note=values["note"],
        )

    def record_crash_verdict(self, verdict: CrashVerdictRecord) -> CrashVerdictRecord:
        """Store a verdict (the newest one of a log counts) and audit it."""
        verdict = verdict.validated()
        time_in = self._dialect.time_in
        values = {
            name: getattr(verdict, name)
            for name in _VERDICT_COLUMNS
            if name not in ("issued_at", "published_at")
        }
        values["verdict"] = str(verdict.verdict)
        values["issued_at"] = time_in(verdict.issued_at)
        values["published_at"] = time_in(verdict.published_at)
        audit = AuditEntry(
            AuditAction.CRASH_VERDICT,
            verdict.actor,
            rider_id=verdict.rider_id,
            suit_id=verdict.suit_id,
            log_id=verdict.log_id,
            detail=json.dumps(
                {
                    "verdict": str(verdict.verdict),
                    "t_offset_s": verdict.t_offset_s,
                    "command_id": verdict.command_id,
                    "gateway_id": verdict.gateway_id,
                }
            ),
        )
        with self._transaction(write=True) as cursor:
            self._insert(cursor, "crash_verdicts", values)
            self._insert(cursor, "audit_log", self._audit_values(audit, self._now()))
        return verdict

    def mark_verdict_published(self, command_id: str, at: dt.datetime) -> None:
        """Record that the broker acknowledged the verdict's command."""
        with self._transaction(write=True) as cursor:
            cursor.execute(
                f"UPDATE crash_verdicts SET published_at = {self._p('at')} "
                f"WHERE command_id = {self._p('command_id')}",
                {"at": self._dialect.time_in(at), "command_id": command_id},
            )

    def get_crash_verdict(
        self, rider_id: str, suit_id: str, log_id: str
    ) -> CrashVerdictRecord | None:
        """Return the newest verdict on a log's crash, or None."""
        with self._transaction(write=False) as cursor:
            cursor.execute(
                f"SELECT {', '.join(_VERDICT_COLUMNS)} FROM crash_verdicts "
                f"WHERE rider_id = {self._p('rider_id')} AND suit_id = "
                f"{self._p('suit_id')} AND log_id = {self._p('log_id')} "
                "ORDER BY verdict_id DESC LIMIT 1",
                {"rider_id": rider_id, "suit_id": suit_id, "log_id": log_id},
            )
            row = cursor.fetchone()
        return None if row is None else self._verdict_from_row(row)

    # -- jobs -------------------------------------------------------------------

    def _job_values(self, job: JobRecord) -> dict[str, Any]:
        time_in = self._dialect.time_in
        values = {name: getattr(job, name) for name in _JOB_COLUMNS}
        values["state"] = str(job.state)
        values["created_at"] = time_in(job.created_at)
        values["updated_at"] = time_in(job.updated_at)
        values["result"] = job.result_json()
        return values

    def insert_job(self, job: JobRecord) -> JobRecord:
        """Store a new job."""
        check_identifier("rider_id", job.rider_id)
        check_identifier("suit_id", job.suit_id)
        with self._transaction(write=True) as cursor:
            self._insert(cursor, "jobs", self._job_values(job))
        return job

    def update_job(self, job: JobRecord) -> JobRecord:
        """Store a job's new state, log id, result or error."""
        values = self._job_values(job)
        with self._transaction(write=True) as cursor:
            cursor.execute(
                f"UPDATE jobs SET state = {self._p('state')}, "
                f"updated_at = {self._p('updated_at')}, log_id = {self._p('log_id')}, "
                f"result = {self._p('result')}, error = {self._p('error')} "
                f"WHERE job_id = {self._p('job_id')}",
                values,
            )
        return job

    def get_job(self, job_id: str) -> JobRecord | None:
        """Return a job by id, or None."""
        with self._transaction(write=False) as cursor:
            cursor.execute(
                f"SELECT {', '.join(_JOB_COLUMNS)} FROM jobs "
                f"WHERE job_id = {self._p('job_id')}",
                {"job_id": job_id},
            )
            row = cursor.fetchone()
        if row is None:
            return None
        values = dict(zip(_JOB_COLUMNS, row, strict=True))
        created = self._dialect.time_out(values["created_at"])
        updated = self._dialect.time_out(values["updated_at"])
        assert created is not None and updated is not None
        return JobRecord(
            job_id=values["job_id"],
            kind=values["kind"],
            state=JobState(values["state"]),
            requested_by=values["requested_by"],
            rider_id=values["rider_id"],
            suit_id=values["suit_id"],
            source_bucket=values["source_bucket"],
            source_key=values["source_key"],
            created_at=created,
            updated_at=updated,
            log_id=values["log_id"],
            result=None if values["result"] is None else json.loads(values["result"]),
            error=values["error"],
        )

    # -- erasure ----------------------------------------------------------------

    def erase_rider_records(self, rider_id: str, actor: str) -> dict[str, int]:
        """Delete a rider's registry row, verdicts, jobs and notices; audit it.

        Objects are deleted one by one before (:meth:`delete_object`); the
        rider's notifications and ingest log entries go too. The audit log
        is kept. Returns the rows deleted per table.
        """
        check_identifier("rider_id", rider_id)
        counts: dict[str, int] = {}
        with self._transaction(write=True) as cursor:
            for table in _RIDER_TABLES:
                cursor.execute(
                    f"SELECT count(*) FROM {table} WHERE rider_id = "
                    f"{self._p('rider_id')}",
                    {"rider_id": rider_id},
                )
                counts[table] = int(cursor.fetchone()[0])
                cursor.execute(
                    f"DELETE FROM {table} WHERE rider_id = {self._p('rider_id')}",
                    {"rider_id": rider_id},
                )
            audit = AuditEntry(
                AuditAction.RIDER_ERASED,
                actor,
                rider_id=rider_id,
                detail=json.dumps(counts, sort_keys=True),
            ).validated()
            self._insert(cursor, "audit_log", self._audit_values(audit, self._now()))
        return counts
