"""Upload to object storage: one interface; local-directory, S3 and Azure backends.

See :mod:`edge_agent.upload.uploader` for the upload rules (idempotent keys,
multipart resume, verification), :mod:`edge_agent.upload.layout` for the key
layout and :mod:`edge_agent.upload.errors` for the exception tree.
:mod:`edge_agent.upload.azure` (Azure Blob Storage; imported on its own, as
the gateway may lack the Azure SDK), :mod:`edge_agent.upload.envelope` and
:mod:`edge_agent.upload.keyring` (client-side encryption at rest) and
:mod:`edge_agent.upload.factory` (the store a configuration names).
"""

from .envelope import EnvelopeStore, rewrap_bucket, rewrap_object
from .errors import (
    BucketNotFound,
    IntegrityError,
    InvalidObjectKey,
    ObjectNotFound,
    ObjectStoreUnavailable,
    StorageError,
    StoreAccessDenied,
    UploadNotFound,
)
from .factory import StoreSettings, build_object_store, etags_are_body_md5
from .journal import JournalEntry, UploadJournal
from .keyring import FileKeyRing, KeyRing, UnknownKeyError
from .layout import BucketNames, ObjectLayout, ObjectRef
from .local import LocalDirStore
from .metadata import SHA256_KEY, ObjectMetadata
from .plan import (
    OUTPUT_ANALYTICS,
    OUTPUT_CRASH_PREFIX,
    OUTPUT_RAW_CSV,
    PlannedObject,
    plan_log_objects,
    upload_log,
)
from .s3 import S3Store, map_boto_error
from .store import (
    MIN_PART_SIZE_BYTES,
    BodyChecksum,
    ChecksumMode,
    MultipartUploadInfo,
    ObjectInfo,
    ObjectStore,
    ObjectSummary,
    UploadedPart,
    multipart_etag,
)
from .uploader import (
    MULTIPART_THRESHOLD_BYTES,
    PART_SIZE_BYTES,
    Uploader,
    UploadResult,
    UploadSettings,
    content_type_for,
)

__all__ = [
    "MIN_PART_SIZE_BYTES",
    "MULTIPART_THRESHOLD_BYTES",
    "OUTPUT_ANALYTICS",
    "OUTPUT_CRASH_PREFIX",
    "OUTPUT_RAW_CSV",
    "PART_SIZE_BYTES",
    "SHA256_KEY",
    "BodyChecksum",
    "BucketNames",
    "BucketNotFound",
    "ChecksumMode",
    "EnvelopeStore",
    "FileKeyRing",
    "IntegrityError",
    "InvalidObjectKey",
    "JournalEntry",
    "KeyRing",
    "LocalDirStore",
    "MultipartUploadInfo",
    "ObjectInfo",
    "ObjectLayout",
    "ObjectMetadata",
    "ObjectNotFound",
    "ObjectRef",
    "ObjectStore",
    "ObjectStoreUnavailable",
    "ObjectSummary",
    "PlannedObject",
    "S3Store",
    "StorageError",
    "StoreAccessDenied",
    "StoreSettings",
    "UnknownKeyError",
    "UploadJournal",
    "UploadNotFound",
    "UploadResult",
    "UploadSettings",
    "UploadedPart",
    "Uploader",
    "build_object_store",
    "content_type_for",
    "etags_are_body_md5",
    "map_boto_error",
    "multipart_etag",
    "plan_log_objects",
    "rewrap_bucket",
    "rewrap_object",
    "upload_log",
]
