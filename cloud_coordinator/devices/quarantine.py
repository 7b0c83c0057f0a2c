"""Keep malformed device messages aside, as they came, with the reason.

Each refused message becomes one JSON object in the quarantine bucket::

    devices/{device_id}/{sha256 of topic and payload}.json

holding the topic, the reason code, the error message, when it was
received, and the payload (as text when it is UTF-8, else base64). The key
depends only on the topic and payload, so the same message redelivered
after a crash overwrites its own copy instead of making a second one. A
topic whose device id is unusable files under ``_invalid``.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import logging
import re

from edge_agent.upload import BodyChecksum, ChecksumMode, ObjectStore, StorageError

from .errors import FlushFailed

__all__ = ["QUARANTINE_PREFIX", "QUARANTINE_SCHEMA", "Quarantine"]

_LOGGER = logging.getLogger(__name__)

QUARANTINE_SCHEMA = "device-quarantine/1"
QUARANTINE_PREFIX = "devices"
_SEGMENT_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


class Quarantine:
    """Write refused device messages to one bucket."""

    def __init__(self, store: ObjectStore, bucket: str) -> None:
        """Keep messages in ``bucket`` of ``store`` (created if missing)."""
        self._store = store
        self.bucket = bucket

    def key_of(self, topic: str, payload: bytes) -> str:
        """Return where a message is kept (deterministic)."""
        parts = topic.split("/")
        device = parts[1] if len(parts) == 3 else ""
        if not _SEGMENT_RE.fullmatch(device):
            device = "_invalid"
        digest = hashlib.sha256(topic.encode() + b"\0" + payload).hexdigest()
        return f"{QUARANTINE_PREFIX}/{device}/{digest}.json"

    def keep(
        self,
        topic: str,
        payload: bytes,
        reason: str,
        error: str,
        received_at: dt.datetime,
    ) -> str:
        """Store one refused message; return its key.

        Raises:
            FlushFailed: the store refused it (the message stays
                unacknowledged and comes back).
        """
        key = self.key_of(topic, payload)
        document: dict[str, str] = {
            "schema": QUARANTINE_SCHEMA,
            "topic": topic,
            "reason": reason,
            "error": error,
            "received_at": received_at.astimezone(dt.UTC).isoformat(),
            "payload_sha256": hashlib.sha256(payload).hexdigest(),
        }
        try:
            document["payload_text"] = payload.decode("utf-8")
        except UnicodeDecodeError:
            document["payload_base64"] = base64.b64encode(payload).decode()
        data = json.dumps(document, sort_keys=True).encode()
        try:
            self._store.put_object(
                self.bucket,
                key,
                data,
                metadata={"reason": reason},
                checksum=BodyChecksum.of(data, ChecksumMode.MD5),
                content_type="application/json",
            )
        except StorageError as exc:
            raise FlushFailed(f"{self.bucket}/{key}: cannot keep aside: {exc}") from exc
        return key
