"""Exceptions of the ingest worker.

Hierarchy::

    IngestError
     └── RejectedInput          bad input: kept aside (quarantine), counted,
          │                     acknowledged; never retried
          ├── BadEvent          the event breaks gateway-event/1 or names
          │                     another gateway than its topic
          └── BadObject         an object is missing, in a bucket ingest
                                does not catalogue, lacks metadata, or does
                                not match its SHA-256 or the event's ids

Transient failures are not in this tree: the store's
:class:`~edge_agent.upload.ObjectStoreUnavailable` and the catalog's
:class:`~cloud_coordinator.catalog.CatalogUnavailable` make the worker retry
the same message (unacknowledged) until they pass.
"""

from __future__ import annotations

__all__ = ["BadEvent", "BadObject", "IngestError", "RejectedInput"]


class IngestError(Exception):
    """Base class of every ingest error."""


class RejectedInput(IngestError):
    """Input that can never be catalogued as it is; quarantine it."""


class BadEvent(RejectedInput):
    """An event message is malformed or inconsistent."""


class BadObject(RejectedInput):
    """An object an event names cannot be catalogued."""
