"""Build the configured object store: backend, then encryption at rest.

The gateway (``[store]`` of its TOML) and the cloud coordinator (``[store]``
of its TOML) describe their store with the same keys, turned into
:class:`StoreSettings` by their configuration modules; this is the one place
that turns those settings into an :class:`~edge_agent.upload.store.ObjectStore`,
so a key means the same on both sides.

Encryption at rest (``encryption``):

* ``"none"``: the backend as it is;
* ``"server"``: the store encrypts. S3 sends SSE-S3 (``AES256``) with every
  put and multipart upload (SeaweedFS needs a key-encryption key,
  ``WEED_S3_SSE_KEK``; without one it answers such requests with a 500,
  which surfaces as ObjectStoreUnavailable); Azure Blob Storage always
  encrypts at rest, so nothing is sent (Azurite does not encrypt: use
  ``envelope`` there); the local-directory store cannot, which is a
  configuration error;
* ``"envelope"``: client-side envelope encryption
  (:class:`~edge_agent.upload.envelope.EnvelopeStore`) with the key-encryption
  keys of ``key_file`` (active) and ``old_key_files`` (unwrap only).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from . import s3
from .envelope import EnvelopeStore
from .keyring import FileKeyRing
from .local import LocalDirStore
from .s3 import S3Store
from .store import ObjectStore

__all__ = [
    "DEFAULT_UPLOADS_CONTAINER",
    "ENCRYPTION_MODES",
    "STORE_KINDS",
    "StoreSettings",
    "StoreSettingsError",
    "azure_blob_endpoint",
    "build_object_store",
    "etags_are_body_md5",
    "parse_key_file_list",
]

STORE_KINDS = ("local", "s3", "azure")
ENCRYPTION_MODES = ("none", "server", "envelope")
# What S3 is asked for with encryption = "server": SSE-S3, which SeaweedFS,
# MinIO and AWS support without a key-management service.
S3_SERVER_SIDE_ENCRYPTION = "AES256"
# azure.UPLOADS_CONTAINER; repeated so that a gateway without the Azure SDK
# (it is in the cloud extra) can import this module.
DEFAULT_UPLOADS_CONTAINER = "suitlink-multipart"


class StoreSettingsError(ValueError):
    """The store settings do not describe a usable store."""


@dataclass(frozen=True)
class StoreSettings:
    """Everything needed to open a store; empty strings mean "not set"."""

    kind: str = "local"
    root: Path | None = None
    endpoint_url: str = ""
    region: str = "us-east-1"
    access_key_id: str = ""
    secret_access_key: str = ""
    connection_string: str = ""
    account_name: str = ""
    account_key: str = ""
    uploads_container: str = DEFAULT_UPLOADS_CONTAINER
    encryption: str = "none"
    key_file: Path | None = None
    old_key_files: tuple[Path, ...] = ()
    connect_timeout_s: float | None = None
    read_timeout_s: float | None = None
    max_attempts: int | None = None


def parse_key_file_list(value: str, base: Path | None = None) -> tuple[Path, ...]:
    """Split a comma-separated list of key files; relative ones from ``base``."""
    paths = []
    for item in value.split(","):
        text = item.strip()
        if text:
            path = Path(text).expanduser()
            paths.append(path if path.is_absolute() or base is None else base / path)
    return tuple(paths)


def azure_blob_endpoint(
    connection_string: str, account_name: str, endpoint_url: str
) -> tuple[str, int]:
    """Return the host and port of an Azure account's blob endpoint.

    From ``endpoint_url`` if set, else the connection string's
    ``BlobEndpoint`` or ``AccountName`` and ``EndpointSuffix``, else
    ``account_name`` on Azure's public cloud (for the gateway's uplink probe).

    Raises:
        StoreSettingsError: no endpoint or account can be found.
    """
    fields = dict(
        part.split("=", 1) for part in connection_string.split(";") if "=" in part
    )
    url = endpoint_url or fields.get("BlobEndpoint", "")
    if not url:
        account = fields.get("AccountName") or account_name
        if not account:
            raise StoreSettingsError(
                "[store] kind = 'azure': no endpoint_url, BlobEndpoint or account"
            )
        suffix = fields.get("EndpointSuffix", "core.windows.net")
        scheme = fields.get("DefaultEndpointsProtocol", "https")
        url = f"{scheme}://{account}.blob.{suffix}"
    parts = urlsplit(url)
    if not parts.hostname:
        raise StoreSettingsError(f"[store] azure endpoint {url!r}: no host")
    return parts.hostname, parts.port or (80 if parts.scheme == "http" else 443)


def _backend(settings: StoreSettings) -> ObjectStore:
    if settings.kind == "local":
        if settings.root is None:
            raise StoreSettingsError("[store] kind = 'local' needs root")
        if settings.encryption == "server":
            raise StoreSettingsError(
                "[store] encryption = 'server': the local-directory store cannot "
                "encrypt; use encryption = 'envelope' with a key_file"
            )
        return LocalDirStore(settings.root)
    if settings.kind == "s3":
        return S3Store.connect(
            settings.endpoint_url or None,
            access_key_id=settings.access_key_id or None,
            secret_access_key=settings.secret_access_key or None,
            region=settings.region,
            server_side_encryption=(
                S3_SERVER_SIDE_ENCRYPTION if settings.encryption == "server" else None
            ),
            connect_timeout_s=settings.connect_timeout_s or s3.CONNECT_TIMEOUT_S,
            read_timeout_s=settings.read_timeout_s or s3.READ_TIMEOUT_S,
            max_attempts=settings.max_attempts or s3.MAX_ATTEMPTS,
        )
    if settings.kind == "azure":
        try:
            from . import azure
        except ImportError as exc:
            raise StoreSettingsError(
                "[store] kind = 'azure' needs the Azure SDK: "
                "pip install azure-storage-blob"
            ) from exc
        if not settings.connection_string and not (
            settings.account_name and settings.account_key
        ):
            raise StoreSettingsError(
                "[store] kind = 'azure' needs connection_string, or account_name "
                "and account_key (endpoint_url optional)"
            )
        return azure.AzureBlobStore.connect(
            connection_string=settings.connection_string or None,
            account_url=settings.endpoint_url or None,
            account_name=settings.account_name or None,
            account_key=settings.account_key or None,
            uploads_container=settings.uploads_container,
            connect_timeout_s=settings.connect_timeout_s or azure.CONNECT_TIMEOUT_S,
            read_timeout_s=settings.read_timeout_s or azure.READ_TIMEOUT_S,
            retry_total=(
                azure.RETRY_TOTAL
                if settings.max_attempts is None
                else settings.max_attempts - 1
            ),
        )
    raise StoreSettingsError(
        f"[store] kind = {settings.kind!r}: allowed values are {STORE_KINDS}"
    )


def build_object_store(settings: StoreSettings) -> ObjectStore:
    """Return the store ``settings`` describe, encrypting as configured.

    No request is made.

    Raises:
        StoreSettingsError: an unknown kind or encryption mode, missing
            settings, or server-side encryption on the local store.
        KeyFileError: a key file is missing, too open or malformed.
        StorageError: the backend refused its settings (a malformed
            connection string).
    """
    if settings.encryption not in ENCRYPTION_MODES:
        raise StoreSettingsError(
            f"[store] encryption = {settings.encryption!r}: allowed values are "
            f"{ENCRYPTION_MODES}"
        )
    if settings.encryption == "envelope" and settings.key_file is None:
        raise StoreSettingsError(
            "[store] encryption = 'envelope' needs key_file (create one with "
            "`head -c 32 /dev/urandom > FILE && chmod 600 FILE`)"
        )
    store = _backend(settings)
    if settings.encryption != "envelope":
        return store
    assert settings.key_file is not None
    return EnvelopeStore(
        store, FileKeyRing.from_files(settings.key_file, settings.old_key_files)
    )


def etags_are_body_md5(store: ObjectStore) -> bool:
    """Return whether the store's ETags are MD5s of the bytes the uploader sent.

    False for the envelope store (its ETags are of the ciphertext); the
    uploader then verifies size and SHA-256 only (``verify_etag=False``).
    """
    return not isinstance(store, EnvelopeStore)
