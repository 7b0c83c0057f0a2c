"""Exceptions raised by object storage backends and the uploader.

Hierarchy::

    StorageError
     ├── ObjectStoreUnavailable   network down, timeout, 5xx: retry later
     ├── StoreAccessDenied        credentials or permissions: operator must act
     ├── ObjectNotFound           no such object
     │    ├── BucketNotFound      no such bucket
     │    └── UploadNotFound      multipart upload id unknown (aborted/completed)
     ├── IntegrityError           checksum, size or SHA-256 mismatch
     └── InvalidObjectKey         bucket or key not acceptable to the store

Third-party errors (boto3/botocore, OSError) are mapped into this tree in
one place per backend, always with ``raise ... from``.
"""

from __future__ import annotations

__all__ = [
    "BucketNotFound",
    "IntegrityError",
    "InvalidObjectKey",
    "ObjectNotFound",
    "ObjectStoreUnavailable",
    "StorageError",
    "StoreAccessDenied",
    "UploadNotFound",
]


class StorageError(Exception):
    """Base class of every object storage error."""


class ObjectStoreUnavailable(StorageError):
    """The store cannot be reached or is failing; try again later."""


class StoreAccessDenied(StorageError):
    """The store refused the credentials or the operation."""


class ObjectNotFound(StorageError):
    """The object does not exist."""


class BucketNotFound(ObjectNotFound):
    """The bucket does not exist."""


class UploadNotFound(ObjectNotFound):
    """The multipart upload does not exist (any more)."""


class IntegrityError(StorageError):
    """Data did not match its checksum, size or recorded SHA-256."""


class InvalidObjectKey(StorageError, ValueError):
    """The bucket name or object key cannot be used with this store."""
