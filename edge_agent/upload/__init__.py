"""Upload to object storage: one interface, a local-directory and an S3 backend.

See :mod:`edge_agent.upload.uploader` for the upload rules (idempotent keys,
multipart resume, verification), :mod:`edge_agent.upload.layout` for the key
layout and :mod:`edge_agent.upload.errors` for the exception tree.
"""

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
from .journal import JournalEntry, UploadJournal
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
    "IntegrityError",
    "InvalidObjectKey",
    "JournalEntry",
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
    "UploadJournal",
    "UploadNotFound",
    "UploadResult",
    "UploadSettings",
    "UploadedPart",
    "Uploader",
    "content_type_for",
    "map_boto_error",
    "multipart_etag",
    "plan_log_objects",
    "upload_log",
]
