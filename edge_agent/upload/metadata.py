"""Provenance metadata carried by every object the gateway uploads.

S3 user metadata travels as HTTP headers: keys are kept lowercase ASCII with
dashes, values are strings. Values are percent-encoded outside printable
ASCII (a rider id with an accent survives the round trip), and absent values
are left out rather than sent as empty strings.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import quote, unquote

__all__ = [
    "MAX_METADATA_BYTES",
    "SHA256_KEY",
    "ObjectMetadata",
]

SHA256_KEY = "sha256"
# AWS caps user metadata at 2 KB per object (keys plus values).
MAX_METADATA_BYTES = 2048
_KEY_RE = re.compile(r"[a-z0-9][a-z0-9-]{0,63}")
_SHA256_RE = re.compile(r"[0-9a-f]{64}")
# Printable ASCII except '%', which starts an escape.
_SAFE = "".join(chr(c) for c in range(0x20, 0x7F) if chr(c) not in "%")

_FIELDS = {
    "log_id": "log-id",
    "suit_id": "suit-id",
    "rider_id": "rider-id",
    "kind": "kind",
    "log_start_utc": "log-start-utc",
    "log_end_utc": "log-end-utc",
    "sample_count": "sample-count",
    "software_version": "software-version",
    "model_version": "model-version",
}


@dataclass(frozen=True)
class ObjectMetadata:
    """SHA-256 and provenance of one object.

    ``kind`` says what the object is (``raw_csv``, ``analytics``,
    ``crash_raw_csv``, ...). ``extra`` holds further keys, which must be
    lowercase ASCII (letters, digits, dashes).
    """

    sha256_hex: str
    log_id: str
    suit_id: str
    rider_id: str
    kind: str
    log_start_utc: str | None = None
    log_end_utc: str | None = None
    sample_count: int | None = None
    software_version: str | None = None
    model_version: str | None = None
    extra: Mapping[str, str] = field(default_factory=dict)

    def to_s3(self) -> dict[str, str]:
        """Return the metadata as S3 user metadata (without ``x-amz-meta-``).

        Raises:
            ValueError: a malformed SHA-256, a bad extra key, or more than
                ``MAX_METADATA_BYTES`` in total.
        """
        if not _SHA256_RE.fullmatch(self.sha256_hex):
            raise ValueError(
                f"object metadata of log {self.log_id!r}: sha256 must be 64 "
                f"lowercase hex digits, got {self.sha256_hex!r}"
            )
        out = {SHA256_KEY: self.sha256_hex}
        for attribute, key in _FIELDS.items():
            value = getattr(self, attribute)
            if value is not None:
                out[key] = quote(str(value), safe=_SAFE)
        for key, value in self.extra.items():
            if not _KEY_RE.fullmatch(key) or key in out:
                raise ValueError(
                    f"object metadata of log {self.log_id!r}: extra key {key!r} "
                    "must be lowercase letters, digits and dashes, and not a "
                    "standard key"
                )
            out[key] = quote(str(value), safe=_SAFE)
        total = sum(len(key) + len(value) for key, value in out.items())
        if total > MAX_METADATA_BYTES:
            raise ValueError(
                f"object metadata of log {self.log_id!r}: {total} bytes, at most "
                f"{MAX_METADATA_BYTES} allowed"
            )
        return out

    @classmethod
    def from_s3(cls, metadata: Mapping[str, str]) -> ObjectMetadata:
        """Parse metadata written by :meth:`to_s3`.

        Raises:
            ValueError: a required key is missing.
        """
        lowered = {key.lower(): unquote(value) for key, value in metadata.items()}
        missing = [
            key
            for key in (SHA256_KEY, "log-id", "suit-id", "rider-id", "kind")
            if key not in lowered
        ]
        if missing:
            raise ValueError(f"object metadata: missing keys {missing}")
        known = {SHA256_KEY, *_FIELDS.values()}
        count = lowered.get("sample-count")
        return cls(
            sha256_hex=lowered[SHA256_KEY],
            log_id=lowered["log-id"],
            suit_id=lowered["suit-id"],
            rider_id=lowered["rider-id"],
            kind=lowered["kind"],
            log_start_utc=lowered.get("log-start-utc"),
            log_end_utc=lowered.get("log-end-utc"),
            sample_count=None if count is None else int(count),
            software_version=lowered.get("software-version"),
            model_version=lowered.get("model-version"),
            extra={k: v for k, v in lowered.items() if k not in known},
        )
