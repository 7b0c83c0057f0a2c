"""What the catalog stores: object records, riders, filters and pages.

An :class:`ObjectRecord` is what a caller (ingest, reconciliation, archive
upload) asks the catalog to index; a :class:`CatalogObject` is a stored row
as it is read back, with the catalog's own id, times and retention date.
Every time is an aware UTC ``datetime``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import re
from dataclasses import dataclass, field, fields
from enum import StrEnum
from typing import Generic, TypeVar

from .errors import InvalidRecord

__all__ = [
    "MAX_ID_CHARS",
    "MAX_KEY_BYTES",
    "CatalogObject",
    "ObjectFilter",
    "ObjectKind",
    "ObjectRecord",
    "Page",
    "Rider",
    "UpsertOutcome",
    "UpsertResult",
    "UserType",
    "check_identifier",
    "require_utc",
]

# Longest rider, suit, log or technician id; the same bound the gateway puts
# on key segments (S3 keys are limited to 1024 bytes in all).
MAX_ID_CHARS = 200
# S3's limit on a key, in UTF-8 bytes.
MAX_KEY_BYTES = 1024
_SHA256_RE = re.compile(r"[0-9a-f]{64}")
# Characters an id must not contain: separators and C0/C1 control characters.
# U+FFFD is what a server makes of bytes that are not UTF-8: an id holding
# it was never what the client meant, so it is refused with the rest.
_BAD_ID_CHAR_RE = re.compile(r"[/\\\x00-\x1f\x7f-\x9f\ufffd]")
_BUCKET_RE = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_VERSION_CHARS = 200

T = TypeVar("T")


class ObjectKind(StrEnum):
    """Which bucket family an object belongs to."""

    RAW = "raw"
    ANALYTICS = "analytics"
    CRASH = "crash"


class UserType(StrEnum):
    """Whether a rider is a private or a professional user."""

    PRIVATE = "private"
    PROFESSIONAL = "professional"


class UpsertOutcome(StrEnum):
    """What an upsert did."""

    INSERTED = "inserted"  # a new row
    UNCHANGED = "unchanged"  # same SHA-256 and metadata: nothing written
    UPDATED = "updated"  # same SHA-256, metadata learnt or changed
    REPLACED = "replaced"  # a new SHA-256: the object was overwritten


def check_identifier(field_name: str, value: object) -> str:
    """Return ``value`` if it can be a rider, suit, log or technician id.

    The rule matches the gateway's key segments: 1-200 characters, no ``/``
    or ``\\``, no control characters, no U+FFFD (the mark of bytes that were
    not UTF-8), not ``.`` or ``..``.

    Raises:
        InvalidRecord: the value breaks the rule (the message names the field).
    """
    if (
        not isinstance(value, str)
        or not value
        or len(value) > MAX_ID_CHARS
        or value in (".", "..")
        or _BAD_ID_CHAR_RE.search(value)
    ):
        raise InvalidRecord(
            f"{field_name} {value!r}: expected 1-{MAX_ID_CHARS} characters "
            "without '/', '\\', control characters or U+FFFD, not '.' or '..'"
        )
    return value


def require_utc(field_name: str, value: dt.datetime | None) -> dt.datetime | None:
    """Return ``value`` converted to UTC; refuse naive datetimes.

    Raises:
        InvalidRecord: ``value`` has no time zone.
    """
    if value is None:
        return None
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidRecord(
            f"{field_name} {value.isoformat()}: a time zone is required (UTC)"
        )
    return value.astimezone(dt.UTC)


def _check_text(field_name: str, value: str | None, limit: int) -> None:
    if value is not None and (not value or len(value) > limit):
        raise InvalidRecord(
            f"{field_name} {value!r}: expected 1-{limit} characters or null"
        )


@dataclass(frozen=True)
class ObjectRecord:
    """One stored object to index, with its provenance metadata.

    ``object_type`` is the gateway's own name for the object (``raw_csv``,
    ``analytics``, ``crash_raw_csv``, ``crash_windows``, ...); ``kind`` is
    the bucket family it was found in. ``crash`` is None when the crash
    verdict is unknown (input that cannot be judged). ``created_at`` is when
    the object was first catalogued; the catalog's clock when None.
    ``gateway_id`` is the gateway whose event announced the object (None:
    found by reconciliation or uploaded another way).
    """

    bucket: str
    key: str
    kind: ObjectKind
    object_type: str
    rider_id: str
    suit_id: str
    log_id: str
    sha256_hex: str
    size_bytes: int
    user_type: UserType | None = None
    product: str | None = None
    log_start: dt.datetime | None = None
    log_end: dt.datetime | None = None
    crash: bool | None = None
    model_version: str | None = None
    software_version: str | None = None
    sample_count: int | None = None
    created_at: dt.datetime | None = None
    gateway_id: str | None = None

    def validated(self) -> ObjectRecord:
        """Return the record with times in UTC after checking every field.

        Raises:
            InvalidRecord: the first malformed field, named in the message.
        """
        where = f"object {self.bucket}/{self.key}"
        if not isinstance(self.bucket, str) or not _BUCKET_RE.fullmatch(self.bucket):
            raise InvalidRecord(f"{where}: bucket must be 3-63 of a-z 0-9 . -")
        key_bytes = len(self.key.encode()) if isinstance(self.key, str) else 0
        if not 0 < key_bytes <= MAX_KEY_BYTES or "\0" in self.key:
            raise InvalidRecord(f"{where}: key must be 1-{MAX_KEY_BYTES} bytes")
        try:
            kind = ObjectKind(self.kind)
            user_type = None if self.user_type is None else UserType(self.user_type)
            for name in ("rider_id", "suit_id", "log_id"):
                check_identifier(name, getattr(self, name))
            _check_text("object_type", self.object_type, 64)
            if self.gateway_id is not None:
                check_identifier("gateway_id", self.gateway_id)
            _check_text("product", self.product, 64)
            _check_text("model_version", self.model_version, _VERSION_CHARS)
            _check_text("software_version", self.software_version, _VERSION_CHARS)
            log_start = require_utc("log_start", self.log_start)
            log_end = require_utc("log_end", self.log_end)
            created_at = require_utc("created_at", self.created_at)
        except ValueError as exc:
            raise InvalidRecord(f"{where}: {exc}") from exc
        if not isinstance(self.sha256_hex, str) or not _SHA256_RE.fullmatch(
            self.sha256_hex
        ):
            raise InvalidRecord(
                f"{where}: sha256 must be 64 lowercase hex digits, "
                f"got {self.sha256_hex!r}"
            )
        if not isinstance(self.size_bytes, int) or self.size_bytes < 0:
            raise InvalidRecord(f"{where}: size_bytes {self.size_bytes!r} < 0")
        if self.sample_count is not None and self.sample_count < 0:
            raise InvalidRecord(f"{where}: sample_count {self.sample_count} < 0")
        if log_start and log_end and log_end < log_start:
            raise InvalidRecord(
                f"{where}: log_end {log_end.isoformat()} is before log_start "
                f"{log_start.isoformat()}"
            )
        return dataclasses.replace(
            self,
            kind=kind,
            user_type=user_type,
            log_start=log_start,
            log_end=log_end,
            created_at=created_at,
        )


@dataclass(frozen=True)
class CatalogObject:
    """One indexed object as stored, with the catalog's id and times.

    ``sort_time`` orders listings (newest first): the log's start when its
    clock was wall-clock time, otherwise when the object was catalogued.
    ``retention_until`` is when raw data stops being downloadable (None:
    kept, as for crash data and professional riders).
    """

    object_id: int
    bucket: str
    key: str
    kind: ObjectKind
    object_type: str
    rider_id: str
    suit_id: str
    log_id: str
    sha256_hex: str
    size_bytes: int
    user_type: UserType | None
    product: str | None
    log_start: dt.datetime | None
    log_end: dt.datetime | None
    sort_time: dt.datetime
    crash: bool | None
    model_version: str | None
    software_version: str | None
    sample_count: int | None
    created_at: dt.datetime
    updated_at: dt.datetime
    retention_until: dt.datetime | None
    gateway_id: str | None = None

    def as_record(self) -> ObjectRecord:
        """Return the row as the record that would index it again."""
        return ObjectRecord(
            bucket=self.bucket,
            key=self.key,
            kind=self.kind,
            object_type=self.object_type,
            rider_id=self.rider_id,
            suit_id=self.suit_id,
            log_id=self.log_id,
            sha256_hex=self.sha256_hex,
            size_bytes=self.size_bytes,
            user_type=self.user_type,
            product=self.product,
            log_start=self.log_start,
            log_end=self.log_end,
            crash=self.crash,
            model_version=self.model_version,
            software_version=self.software_version,
            sample_count=self.sample_count,
            created_at=self.created_at,
            gateway_id=self.gateway_id,
        )

    def retention_open(self, now: dt.datetime) -> bool:
        """Return whether the object may still be downloaded at ``now``."""
        return self.retention_until is None or now < self.retention_until


@dataclass(frozen=True)
class UpsertResult:
    """The outcome of an upsert and the row as stored afterwards."""

    outcome: UpsertOutcome
    object: CatalogObject


@dataclass(frozen=True)
class Rider:
    """A rider: user type, product and (for professionals) their technician."""

    rider_id: str
    user_type: UserType
    product: str | None = None
    technician_id: str | None = None

    def validated(self) -> Rider:
        """Return the rider after checking every field.

        Raises:
            InvalidRecord: a malformed id, user type or product.
        """
        try:
            check_identifier("rider_id", self.rider_id)
            if self.technician_id is not None:
                check_identifier("technician_id", self.technician_id)
            _check_text("product", self.product, 64)
            user_type = UserType(self.user_type)
        except ValueError as exc:
            raise InvalidRecord(f"rider {self.rider_id!r}: {exc}") from exc
        return Rider(self.rider_id, user_type, self.product, self.technician_id)


@dataclass(frozen=True)
class ObjectFilter:
    """Which objects a listing returns; None means no restriction.

    ``time_from`` (inclusive) and ``time_to`` (exclusive) apply to the
    object's ``sort_time``. ``technician_id`` restricts the listing to the
    professional riders assigned to that technician; it is how the API
    scopes a technician's view, and combines with every other field.
    """

    kind: ObjectKind | None = None
    rider_id: str | None = None
    suit_id: str | None = None
    log_id: str | None = None
    user_type: UserType | None = None
    crash: bool | None = None
    time_from: dt.datetime | None = None
    time_to: dt.datetime | None = None
    technician_id: str | None = None

    def validated(self) -> ObjectFilter:
        """Return the filter with times in UTC after checking its fields.

        Raises:
            InvalidRecord: a malformed id or a naive time.
        """
        for name in ("rider_id", "suit_id", "log_id", "technician_id"):
            value = getattr(self, name)
            if value is not None:
                check_identifier(name, value)
        return ObjectFilter(
            kind=None if self.kind is None else ObjectKind(self.kind),
            rider_id=self.rider_id,
            suit_id=self.suit_id,
            log_id=self.log_id,
            user_type=None if self.user_type is None else UserType(self.user_type),
            crash=self.crash,
            time_from=require_utc("time_from", self.time_from),
            time_to=require_utc("time_to", self.time_to),
            technician_id=self.technician_id,
        )

    def fingerprint(self) -> str:
        """Return a short digest that ties a cursor to this filter."""
        parts = []
        for item in fields(self):
            value = getattr(self, item.name)
            if isinstance(value, dt.datetime):
                value = value.astimezone(dt.UTC).isoformat()
            parts.append(f"{item.name}={value!r}")
        return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a listing and the cursor of the next (None: last page)."""

    items: list[T] = field(default_factory=list)
    next_cursor: str | None = None
