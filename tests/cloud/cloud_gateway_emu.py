"""An emulated gateway for the cloud tests: uploads a log, builds its events.

Objects go to the store with the gateway's layout and metadata (as
``edge_agent.upload`` writes them); events are ``gateway-event/1`` documents
built with the gateway's own :class:`~edge_agent.mqtt.events.GatewayEvent`.
"""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import json
import os
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from cloud_helpers import analytics_document

from edge_agent.mqtt.events import EventType, GatewayEvent
from edge_agent.upload import (
    BodyChecksum,
    BucketNames,
    ChecksumMode,
    ObjectLayout,
    ObjectMetadata,
    ObjectStore,
)

CRASH_EVENTS = [{"t_offset_s": 12.5, "probability": 0.97}]


@dataclass
class UploadedLog:
    """What the gateway uploaded for one log."""

    gateway_id: str
    rider: str
    suit: str
    log: str
    crash: bool
    object_keys: dict[str, str]
    suit_log_sha256: str
    bodies: dict[str, bytes] = field(default_factory=dict)

    def events(self) -> list[GatewayEvent]:
        """Return the events the gateway publishes for this log."""

        def make(kind: EventType, details: Mapping[str, Any] | None) -> GatewayEvent:
            return GatewayEvent.create(
                kind,
                gateway_id=self.gateway_id,
                rider_id=self.rider,
                suit_id=self.suit,
                log_id=self.log,
                object_keys=self.object_keys,
                sha256=self.suit_log_sha256,
                details=details,
            )

        events = [make(EventType.LOG_UPLOADED, None)]
        if self.crash:
            crash = {"events": CRASH_EVENTS}
            events.append(make(EventType.CRASH_DETECTED, crash))
        return events

    def topic(self, prefix: str = "gateways") -> str:
        return f"{prefix}/{self.gateway_id}/events"


def upload_log(
    store: ObjectStore,
    buckets: BucketNames,
    *,
    gateway_id: str = "gw-1",
    rider: str = "r1",
    suit: str = "SUIT-1",
    start: dt.datetime,
    crash: bool = False,
    log: str | None = None,
    raw_bytes: int = 2048,
) -> UploadedLog:
    """Put a log's CSV, analytics and (crash) copy in ``store``, like a gateway."""
    log = log or uuid.uuid4().hex
    layout = ObjectLayout(buckets)
    document = analytics_document(rider, suit, log, start, crash)
    if crash:
        document["crash"]["events"] = CRASH_EVENTS
    csv_gz = gzip.compress(
        b"t_s,ax_g\n" + os.urandom(max(0, raw_bytes)).hex().encode(), compresslevel=1
    )
    refs = [
        ("raw_csv", layout.raw_csv(rider, suit, start.date(), log), csv_gz),
        (
            "analytics",
            layout.analytics(rider, suit, log),
            json.dumps(document).encode(),
        ),
    ]
    if crash:
        refs.append(
            ("crash_raw_csv", layout.crash(rider, suit, log, f"{log}.csv.gz"), csv_gz)
        )
    uploaded = UploadedLog(
        gateway_id,
        rider,
        suit,
        log,
        crash,
        {},
        hashlib.sha256(log.encode()).hexdigest(),
    )
    for name, ref, data in refs:
        metadata = ObjectMetadata(
            sha256_hex=hashlib.sha256(data).hexdigest(),
            log_id=log,
            suit_id=suit,
            rider_id=rider,
            kind=name,
            log_start_utc=document["start_utc"],
            log_end_utc=document["end_utc"],
            sample_count=document["samples"],
            software_version="0.1.0",
            model_version="1.0.0",
        )
        store.ensure_bucket(ref.bucket)
        store.put_object(
            ref.bucket,
            ref.key,
            data,
            metadata=metadata.to_s3(),
            checksum=BodyChecksum.of(data, ChecksumMode.MD5),
        )
        uploaded.object_keys[name] = str(ref)
        uploaded.bodies[name] = data
    return uploaded


def unique_buckets() -> BucketNames:
    """Return bucket names no other test uses (one SeaweedFS serves them all)."""
    tag = uuid.uuid4().hex[:8]
    return BucketNames(
        raw=f"raw-{tag}",
        analytics=f"analytics-{tag}",
        crash=f"crash-{tag}",
        archive=f"archive-{tag}",
    )
