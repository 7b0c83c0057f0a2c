"""Build the running parts from the configuration: store, catalog, keys, app.

The one place that turns :class:`~.config.CoordinatorConfig` into objects;
the CLI and the uvicorn worker factory both go through it, so a setting
means the same thing everywhere.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

from fastapi import FastAPI

from edge_agent.custody.errors import KeyFileError as StoreKeyFileError
from edge_agent.upload import ObjectStore, S3Store
from edge_agent.upload.azure import AzureBlobStore
from edge_agent.upload.factory import (
    StoreSettings,
    StoreSettingsError,
    build_object_store,
    parse_key_file_list,
)

from .api import (
    ApiServices,
    ApiSettings,
    AzureSasPresigner,
    LocalPresigner,
    Presigner,
    S3Presigner,
    create_app,
    derive_link_key,
)
from .api.lifecycle import build_lifecycle
from .auth import (
    Algorithm,
    KeyFileError,
    TokenIssuer,
    TokenSettings,
    TokenVerifier,
    read_hmac_key,
)
from .catalog import Catalog, RetentionPolicy, open_catalog
from .config import ENV_PREFIX, ConfigError, CoordinatorConfig, load_config
from .fl.service import FederatedService

__all__ = [
    "CONFIG_ENV",
    "app_from_environment",
    "build_catalog",
    "build_issuer",
    "build_presigner",
    "build_services",
    "build_store",
    "build_verifier",
    "store_settings",
    "token_settings",
]

# Environment variable naming the configuration file of worker processes.
CONFIG_ENV = f"{ENV_PREFIX}CONFIG"


def store_settings(config: CoordinatorConfig) -> StoreSettings:
    """Return the ``[store]`` settings, paths anchored at the config's folder."""
    store = config.store
    return StoreSettings(
        kind=store.kind,
        root=config.path(store.root),
        endpoint_url=store.endpoint_url,
        region=store.region,
        access_key_id=store.access_key_id,
        secret_access_key=store.secret_access_key,
        connection_string=store.connection_string,
        account_name=store.account_name,
        account_key=store.account_key,
        uploads_container=store.uploads_container,
        encryption=store.encryption,
        key_file=config.path(store.key_file),
        old_key_files=parse_key_file_list(store.old_key_files, config.base_dir),
    )


def build_store(config: CoordinatorConfig) -> ObjectStore:
    """Return the configured object store, encrypting as configured.

    No request is made yet.

    Raises:
        ConfigError: contradictory ``[store]`` settings, or an encryption key
            file is missing or unusable.
    """
    try:
        return build_object_store(store_settings(config))
    except StoreSettingsError as exc:
        raise ConfigError(str(exc)) from exc
    except StoreKeyFileError as exc:
        raise ConfigError(f"[store] {exc}") from exc


def build_catalog(config: CoordinatorConfig) -> Catalog:
    """Return the configured catalog (not connected or migrated yet).

    Raises:
        ConfigError: a malformed catalog URL or schema.
    """
    retention = RetentionPolicy(dt.timedelta(days=config.retention.raw_days))
    try:
        return open_catalog(
            config.catalog_url,
            schema=config.catalog.schema or None,
            retention=retention,
        )
    except ValueError as exc:
        raise ConfigError(f"[catalog] {exc}") from exc


def token_settings(config: CoordinatorConfig) -> TokenSettings:
    """Return the token settings of the deployment."""
    auth = config.auth
    return TokenSettings(
        algorithm=Algorithm(auth.algorithm),
        issuer=auth.issuer,
        audience=auth.audience,
        leeway_s=auth.leeway_s,
        max_ttl_s=auth.max_ttl_s,
    )


def build_verifier(config: CoordinatorConfig) -> TokenVerifier:
    """Return the token verifier, reading its key file.

    Raises:
        KeyFileError: the key file is missing or unusable.
    """
    return TokenVerifier.from_files(
        token_settings(config),
        secret_file=config.path(config.auth.secret_file),
        public_key_file=config.path(config.auth.public_key_file),
    )


def build_issuer(config: CoordinatorConfig) -> TokenIssuer:
    """Return the token issuer, reading its signing key file.

    Raises:
        KeyFileError: the key file is missing or unusable.
    """
    return TokenIssuer.from_files(
        token_settings(config),
        secret_file=config.path(config.auth.secret_file),
        private_key_file=config.path(config.auth.private_key_file),
    )


def build_presigner(config: CoordinatorConfig, store: ObjectStore) -> Presigner:
    """Return the download link signer that fits the store.

    Raises:
        KeyFileError: no usable key for links the API signs itself.
    """
    if isinstance(store, AzureBlobStore):
        return AzureSasPresigner(store, config.store.public_endpoint_url or None)
    if isinstance(store, S3Store):
        settings = config.store
        return S3Presigner.connect(
            settings.public_endpoint_url or settings.endpoint_url or None,
            access_key_id=settings.access_key_id or None,
            secret_access_key=settings.secret_access_key or None,
            region=settings.region,
        )
    key_file = config.path(config.downloads.signing_key_file)
    if key_file is not None:
        return LocalPresigner(read_hmac_key(key_file))
    if config.auth.algorithm != Algorithm.HS256:
        raise KeyFileError(
            "[downloads] signing_key_file is needed with ES256 tokens and the "
            "local store; create one with `cloud-coordinator keygen --out FILE`"
        )
    secret_file = config.path(config.auth.secret_file)
    assert secret_file is not None
    return LocalPresigner(derive_link_key(read_hmac_key(secret_file)))


def build_services(config: CoordinatorConfig) -> ApiServices:
    """Return everything the API needs, built from ``config``.

    Raises:
        ConfigError: a malformed setting.
        KeyFileError: a key file is missing or unusable.
    """
    store = build_store(config)
    catalog = build_catalog(config)
    api = config.api
    return ApiServices(
        catalog=catalog,
        store=store,
        verifier=build_verifier(config),
        presigner=build_presigner(config, store),
        buckets=config.buckets,
        settings=ApiSettings(
            default_page_limit=api.default_page_limit,
            max_page_limit=api.max_page_limit,
            url_ttl_s=config.downloads.url_ttl_s,
            public_url=api.public_url,
        ),
        lifecycle=build_lifecycle(config, catalog, store),
        federated=FederatedService.from_config(config),
    )


def app_from_environment() -> FastAPI:
    """Return the app for a uvicorn worker, configured by ``CONFIG_ENV``.

    Raises:
        ConfigError, KeyFileError: as :func:`build_services`.
    """
    value = os.environ.get(CONFIG_ENV)
    config = load_config(Path(value) if value else None)
    return create_app(build_services(config), close_catalog=True)
