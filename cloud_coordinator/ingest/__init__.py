"""Ingest: gateways' uploads into the catalog, from MQTT events and listings.

:class:`IngestWorker` consumes ``log_uploaded`` / ``crash_detected`` events
through a shared subscription, verifies each object (:mod:`.verify`),
catalogues it with its gateway id (:class:`EventProcessor`), acknowledges
after the commit, quarantines bad input, relays crash notifications to
``cloud/events`` (:class:`NotificationRelay`) and runs :func:`reconcile`
periodically. ``cloud-coordinator ingest`` runs it (:mod:`.command`).
"""

from .errors import BadEvent, BadObject, IngestError, RejectedInput
from .processor import EventOutcome, EventProcessor
from .reconcile import ReconcileReport, reconcile
from .relay import CLOUD_EVENT_SCHEMA, NotificationRelay, cloud_event_document
from .stats import IngestStats
from .verify import VerifiedObject, VerifyMode, verify_object
from .worker import IngestWorker, WorkerSettings

__all__ = [
    "CLOUD_EVENT_SCHEMA",
    "BadEvent",
    "BadObject",
    "EventOutcome",
    "EventProcessor",
    "IngestError",
    "IngestStats",
    "IngestWorker",
    "NotificationRelay",
    "ReconcileReport",
    "RejectedInput",
    "VerifiedObject",
    "VerifyMode",
    "WorkerSettings",
    "cloud_event_document",
    "reconcile",
    "verify_object",
]
