"""Cloud coordinator configuration: a TOML file, environment overrides, checks.

Every key is optional; the defaults run an embedded single-host service (a
SQLite catalog and a local-directory store beside the file)::

    [api]
    host = "127.0.0.1"
    port = 8080
    default_page_limit = 50
    max_page_limit = 500          # hard limit per page (at most 1000)
    public_url = ""               # base URL of download links the API serves
    tls_cert_file = ""            # both set: the API terminates TLS itself
    tls_key_file = ""

    [catalog]
    url = "sqlite:catalog.db"     # or "postgresql://user@host:5432/db"
    schema = ""                   # PostgreSQL schema (search path)

    [store]
    kind = "local"                # or "s3", "azure"
    root = "store"                # local store folder
    endpoint_url = ""             # S3 endpoint ("" = AWS); azure: blob endpoint
    public_endpoint_url = ""      # endpoint clients see in presigned/SAS URLs
    region = "us-east-1"
    access_key_id = ""            # "" = boto3's usual credential chain
    secret_access_key = ""
    connection_string = ""        # azure: or account_name + account_key
    account_name = ""
    account_key = ""
    uploads_container = "suitlink-multipart"  # azure: multipart upload records
    encryption = "none"           # "server" (SSE-S3; Azure always) or
                                  # "envelope" (client-side, key files below)
    key_file = ""                 # envelope: active key-encryption key (0600)
    old_key_files = ""            # envelope: older keys, comma-separated

    [buckets]
    raw = "raw"
    analytics = "analytics"
    crash = "crash"
    archive = "archive"

    [auth]
    algorithm = "HS256"           # or "ES256"
    secret_file = "keys/token-secret"   # HS256
    public_key_file = ""          # ES256: verifies (the API needs only this)
    private_key_file = ""         # ES256: signs (`cloud-coordinator token`)
    issuer = "suitlink-cloud"
    audience = "suitlink-api"
    leeway_s = 30.0
    max_ttl_s = 2592000

    [retention]
    raw_days = 14.0               # raw data downloadable this long (14-28)
    notice_days = 3.0             # riders are told this long before deletion
    batch_size = 500              # objects per catalog query of the job

    [downloads]
    url_ttl_s = 300               # lifetime of a download link
    signing_key_file = ""         # local-store links; "" = derived from the
                                  # HS256 secret

    [broker]                      # the MQTT broker (ingest, notifications)
    host = "127.0.0.1"
    port = 8883
    ca_file = ""                  # all three set: TLS with a client
    cert_file = ""                # certificate (the cloud service account)
    key_file = ""
    tls_server_name = ""          # name the broker's certificate must carry
                                  # ("" = host)
    client_id = "cloud-coordinator"   # each process adds its own suffix
    username = ""                 # "" = the certificate's identity
    password_file = ""
    keepalive_s = 30
    publish_timeout_s = 10.0      # how long publish() waits for the PUBACK
    gateways_prefix = "gateways"  # gateways/{id}/events|status|commands
    cloud_events_topic = "cloud/events"
    models_prefix = "models"      # models/{name}/announce
    devices_prefix = "devices"    # devices/{id}/data

    [models]                      # model publishing (TUF repository)
    name = "crash-detector"
    bucket = "models"             # TUF metadata and targets
    keys_dir = "keys/tuf"         # root.pem, targets.pem, snapshot.pem, ...
    root_threshold = 1
    base_keras = ""               # network rebuilt with new heads
                                  # ("" = models/shipped/crash_v1.keras)
    validation_file = "validation/crash-detector.npz"  # made if missing
    validation_rides = 24
    validation_seed = 4242
    canary_gateways = ""          # comma-separated gateway ids
    canary_share = 0.1            # share of gateways (by id hash) first
    min_canaries = 1              # healthy canaries needed to promote
    announce = true               # retained MQTT announcement ([broker])
    root_expiry_s = 31536000
    targets_expiry_s = 2592000
    snapshot_expiry_s = 604800
    timestamp_expiry_s = 172800   # an offline gateway verifies this long

    [ingest]                      # `cloud-coordinator ingest` workers
    group = "ingest"              # shared-subscription group of the workers
    threads = 4                   # events catalogued at once per worker
    verify = "hash"               # or "metadata": trust the store's SHA-256
    session_expiry_s = 3600       # broker keeps unacked events this long
    reconcile_interval_s = 3600.0 # bucket listing pass; 0 = never
    relay_interval_s = 1.0        # outbox -> MQTT cloud/events; 0 = off
    relay_analytics = true        # also "analytics ready" on cloud/events
    temp_dir = ""                 # big objects are hashed through here

    [devices]                     # `cloud-coordinator devices run` workers
    worker_id = "w1"              # stable and unique per worker: names its
                                  # MQTT session and its window objects
    group = "devices"             # shared-subscription group of the workers
    window_s = 300.0              # samples of one device per object window
    flush_interval_s = 5.0        # commit pending samples at least this often
    max_batch_messages = 900      # ... or at this many (below the broker's
                                  # max_inflight_messages, 1000)
    idle_flush_s = 1.0            # ... or once nothing arrived this long
    session_expiry_s = 86400      # broker keeps unacked samples this long
    max_age_s = 604800.0          # older sample times are refused
    max_future_s = 300.0          # sample times further ahead are refused
    quarantine_bucket = "quarantine"   # refused messages, with the reason

    [jobs]                        # background analytics jobs of the API
    workers = 1                   # jobs run at once per API process
    scratch_dir = "jobs-scratch"  # downloads and pipeline output, then deleted

    [crashes]
    publish_verdicts = true       # send verdicts to gateways over [broker]
    connect_timeout_s = 5.0       # a verdict waits this long for the broker

    [archive]                     # `cloud-coordinator upload-archive`
    state_dir = "archive-state"   # multipart journal, quarantine, scratch

    [fl]                          # federated runs (`cloud-coordinator fl`)
    superlink = "127.0.0.1:9093"  # the SuperLink's HTTP API (host:port)
    insecure = false              # true: no TLS (loopback tests only)
    root_certificates = ""        # CA of the SuperLink's TLS certificate
    app_dir = ""                  # folder of the app's pyproject.toml
                                  # ("" = this source checkout)
    out_dir = "fl-heads"          # aggregated heads (head-<run>.json)
    initial_model = ""            # model JSON whose head starts a run
                                  # ("" = the shipped model)
    round_timeout_s = 600.0       # per-round deadline for gateway replies
    quorum_wait_s = 300.0         # a round waits this long for its quorum
    query_timeout_s = 30.0        # eligibility answers awaited this long

Relative paths are taken from the configuration file's folder. Environment
variables ``CLOUD_COORDINATOR_<SECTION>_<KEY>`` (upper case) override keys,
e.g. ``CLOUD_COORDINATOR_STORE_SECRET_ACCESS_KEY``. An error names the
source, the key, the value found and what is allowed.
"""

from __future__ import annotations

import logging
import math
import os
import tomllib
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from edge_agent.upload import BucketNames

from .catalog import MAX_PAGE_LIMIT

__all__ = [
    "ENV_PREFIX",
    "ApiConfig",
    "ArchiveConfig",
    "AuthConfig",
    "BrokerConfig",
    "CatalogConfig",
    "ConfigError",
    "CoordinatorConfig",
    "CrashesConfig",
    "DevicesConfig",
    "DownloadConfig",
    "IngestConfig",
    "JobsConfig",
    "ModelsConfig",
    "RetentionConfig",
    "StoreConfig",
    "load_config",
]

_LOGGER = logging.getLogger(__name__)

ENV_PREFIX = "CLOUD_COORDINATOR_"
# Raw data is kept 2-4 weeks (product decision); other values are accepted
# (tests shorten the window) but logged.
RAW_DAYS_RANGE = (14.0, 28.0)
# Beyond ten years a retention date stops being a policy (and overflows dates).
MAX_RAW_DAYS = 3650.0
# Download links must be short-lived: long enough to start a 250 MB
# download on a slow line, short enough that a leaked link is soon useless.
URL_TTL_RANGE_S = (10, 3600)


class ConfigError(ValueError):
    """The configuration file or an override is invalid."""


@dataclass(frozen=True)
class ApiConfig:
    """The HTTP server of the results API."""

    host: str = "127.0.0.1"
    port: int = 8080
    default_page_limit: int = 50
    max_page_limit: int = 500
    public_url: str = ""
    tls_cert_file: str = ""
    tls_key_file: str = ""


@dataclass(frozen=True)
class CatalogConfig:
    """Where the catalog database is."""

    url: str = "sqlite:catalog.db"
    schema: str = ""


@dataclass(frozen=True)
class StoreConfig:
    """The object store the gateways upload to."""

    kind: str = "local"
    root: str = "store"
    endpoint_url: str = ""
    public_endpoint_url: str = ""
    region: str = "us-east-1"
    access_key_id: str = ""
    secret_access_key: str = ""
    connection_string: str = ""
    account_name: str = ""
    account_key: str = ""
    uploads_container: str = "suitlink-multipart"
    encryption: str = "none"
    key_file: str = ""
    old_key_files: str = ""


@dataclass(frozen=True)
class AuthConfig:
    """Bearer token algorithm, keys and fixed claims."""

    algorithm: str = "HS256"
    secret_file: str = "keys/token-secret"
    public_key_file: str = ""
    private_key_file: str = ""
    issuer: str = "suitlink-cloud"
    audience: str = "suitlink-api"
    leeway_s: float = 30.0
    max_ttl_s: int = 30 * 24 * 3600


@dataclass(frozen=True)
class RetentionConfig:
    """How long raw data stays downloadable, and when riders hear of deletion."""

    raw_days: float = 14.0
    notice_days: float = 3.0
    batch_size: int = 500


@dataclass(frozen=True)
class DownloadConfig:
    """Download links (presigned URLs)."""

    url_ttl_s: int = 300
    signing_key_file: str = ""


@dataclass(frozen=True)
class BrokerConfig:
    """The MQTT broker the cloud services connect to."""

    host: str = "127.0.0.1"
    port: int = 8883
    ca_file: str = ""
    cert_file: str = ""
    key_file: str = ""
    tls_server_name: str = ""
    client_id: str = "cloud-coordinator"
    username: str = ""
    password_file: str = ""
    keepalive_s: int = 30
    publish_timeout_s: float = 10.0
    gateways_prefix: str = "gateways"
    cloud_events_topic: str = "cloud/events"
    models_prefix: str = "models"
    devices_prefix: str = "devices"


@dataclass(frozen=True)
class ModelsConfig:
    """Model publishing: the TUF repository, validation data and roll-out."""

    name: str = "crash-detector"
    bucket: str = "models"
    keys_dir: str = "keys/tuf"
    root_threshold: int = 1
    base_keras: str = ""
    validation_file: str = "validation/crash-detector.npz"
    validation_rides: int = 24
    validation_seed: int = 4242
    canary_gateways: str = ""
    canary_share: float = 0.1
    min_canaries: int = 1
    announce: bool = True
    root_expiry_s: int = 365 * 86400
    targets_expiry_s: int = 30 * 86400
    snapshot_expiry_s: int = 7 * 86400
    timestamp_expiry_s: int = 2 * 86400


@dataclass(frozen=True)
class IngestConfig:
    """The ingest workers (gateway events into the catalog)."""

    group: str = "ingest"
    threads: int = 4
    verify: str = "hash"
    session_expiry_s: int = 3600
    reconcile_interval_s: float = 3600.0
    relay_interval_s: float = 1.0
    relay_analytics: bool = True
    temp_dir: str = ""


@dataclass(frozen=True)
class DevicesConfig:
    """The live device-data workers (MQTT samples into raw window objects)."""

    worker_id: str = "w1"
    group: str = "devices"
    window_s: float = 300.0
    flush_interval_s: float = 5.0
    max_batch_messages: int = 900
    idle_flush_s: float = 1.0
    session_expiry_s: int = 86400
    max_age_s: float = 7 * 86400.0
    max_future_s: float = 300.0
    quarantine_bucket: str = "quarantine"


@dataclass(frozen=True)
class JobsConfig:
    """Background analytics jobs run by the API."""

    workers: int = 1
    scratch_dir: str = "jobs-scratch"


@dataclass(frozen=True)
class CrashesConfig:
    """Crash verdicts: whether and how they reach the gateways."""

    publish_verdicts: bool = True
    connect_timeout_s: float = 5.0


@dataclass(frozen=True)
class ArchiveConfig:
    """Where ``upload-archive`` keeps its journal, quarantine and scratch."""

    state_dir: str = "archive-state"


@dataclass(frozen=True)
class FlConfig:
    """Federated learning: the SuperLink's Control API and run defaults."""

    superlink: str = "127.0.0.1:9093"
    insecure: bool = False
    root_certificates: str = ""
    app_dir: str = ""
    out_dir: str = "fl-heads"
    initial_model: str = ""
    round_timeout_s: float = 600.0
    quorum_wait_s: float = 300.0
    query_timeout_s: float = 30.0


_ALLOWED: dict[tuple[str, str], tuple[str, ...]] = {
    ("store", "kind"): ("local", "s3", "azure"),
    ("store", "encryption"): ("none", "server", "envelope"),
    ("ingest", "verify"): ("hash", "metadata"),
    ("auth", "algorithm"): ("HS256", "ES256"),
}


@dataclass(frozen=True)
class CoordinatorConfig:
    """The whole configuration; ``base_dir`` anchors relative paths."""

    base_dir: Path = field(default_factory=Path.cwd)
    api: ApiConfig = field(default_factory=ApiConfig)
    catalog: CatalogConfig = field(default_factory=CatalogConfig)
    store: StoreConfig = field(default_factory=StoreConfig)
    buckets: BucketNames = field(default_factory=BucketNames)
    auth: AuthConfig = field(default_factory=AuthConfig)
    retention: RetentionConfig = field(default_factory=RetentionConfig)
    downloads: DownloadConfig = field(default_factory=DownloadConfig)
    broker: BrokerConfig = field(default_factory=BrokerConfig)
    models: ModelsConfig = field(default_factory=ModelsConfig)
    ingest: IngestConfig = field(default_factory=IngestConfig)
    devices: DevicesConfig = field(default_factory=DevicesConfig)
    jobs: JobsConfig = field(default_factory=JobsConfig)
    crashes: CrashesConfig = field(default_factory=CrashesConfig)
    archive: ArchiveConfig = field(default_factory=ArchiveConfig)
    fl: FlConfig = field(default_factory=FlConfig)

    def path(self, value: str) -> Path | None:
        """Return a configured path anchored at ``base_dir`` (None if empty)."""
        if not value:
            return None
        path = Path(value).expanduser()
        return path if path.is_absolute() else self.base_dir / path

    @property
    def catalog_url(self) -> str:
        """Return the catalog URL, a relative SQLite path anchored."""
        url = self.catalog.url
        if url.startswith("sqlite:") and not url.startswith("sqlite:///"):
            relative = url.removeprefix("sqlite:")
            return f"sqlite:{self.path(relative)}"
        return url


_SECTIONS: dict[str, type] = {
    "api": ApiConfig,
    "catalog": CatalogConfig,
    "store": StoreConfig,
    "buckets": BucketNames,
    "auth": AuthConfig,
    "retention": RetentionConfig,
    "downloads": DownloadConfig,
    "broker": BrokerConfig,
    "models": ModelsConfig,
    "ingest": IngestConfig,
    "devices": DevicesConfig,
    "jobs": JobsConfig,
    "crashes": CrashesConfig,
    "archive": ArchiveConfig,
    "fl": FlConfig,
}


def _coerce(where: str, value: Any, expected: type) -> Any:
    if isinstance(value, str) and expected is not str:
        text = value.strip()
        try:
            if expected is bool:
                value = {"true": True, "false": False}[text.lower()]
            else:
                value = expected(text)
        except (KeyError, ValueError) as exc:
            raise ConfigError(
                f"{where} = {value!r}: expected {expected.__name__}"
            ) from exc
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"{where} = {value!r}: expected a finite number")
    if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
        raise ConfigError(
            f"{where} = {value!r}: expected {expected.__name__}, "
            f"found {type(value).__name__}"
        )
    return value


def _section(
    name: str,
    cls: type,
    table: Mapping[str, Any],
    source: str,
    env: Mapping[str, str],
    used_env: list[str],
) -> Any:
    hints = typing.get_type_hints(cls)
    known = {item.name for item in fields(cls)}
    unknown = sorted(set(table) - known)
    if unknown:
        raise ConfigError(
            f"{source}: [{name}] unknown keys {unknown}; known: {sorted(known)}"
        )
    values: dict[str, Any] = {}
    for item in fields(cls):
        env_name = f"{ENV_PREFIX}{name}_{item.name}".upper()
        if env_name in env:
            where, raw = f"environment {env_name}", env[env_name]
            used_env.append(env_name)
        elif item.name in table:
            where, raw = f"{source}: [{name}] {item.name}", table[item.name]
        else:
            continue
        value = _coerce(where, raw, hints[item.name])
        allowed = _ALLOWED.get((name, item.name))
        if allowed and value not in allowed:
            raise ConfigError(f"{where} = {value!r}: allowed values are {allowed}")
        values[item.name] = value
    return cls(**values)


def _check(config: CoordinatorConfig, source: str) -> None:
    api = config.api
    if not 1 <= api.max_page_limit <= MAX_PAGE_LIMIT:
        raise ConfigError(
            f"{source}: [api] max_page_limit = {api.max_page_limit}: expected "
            f"1-{MAX_PAGE_LIMIT}"
        )
    if not 1 <= api.default_page_limit <= api.max_page_limit:
        raise ConfigError(
            f"{source}: [api] default_page_limit = {api.default_page_limit}: "
            f"expected 1-{api.max_page_limit} (max_page_limit)"
        )
    if not 0 <= api.port <= 65535:
        raise ConfigError(f"{source}: [api] port = {api.port}: expected 0-65535")
    if bool(api.tls_cert_file) != bool(api.tls_key_file):
        raise ConfigError(f"{source}: [api] tls_cert_file and tls_key_file go together")
    days = config.retention.raw_days
    if not 0 <= days <= MAX_RAW_DAYS:
        raise ConfigError(
            f"{source}: [retention] raw_days = {days}: expected 0-{MAX_RAW_DAYS}"
        )
    if not RAW_DAYS_RANGE[0] <= days <= RAW_DAYS_RANGE[1]:
        _LOGGER.warning(
            "%s: [retention] raw_days = %s is outside the product's %s-%s days",
            source,
            days,
            *RAW_DAYS_RANGE,
        )
    if config.jobs.workers < 1 or config.crashes.connect_timeout_s <= 0:
        raise ConfigError(
            f"{source}: [jobs] workers = {config.jobs.workers} must be >= 1 and "
            f"[crashes] connect_timeout_s = {config.crashes.connect_timeout_s} > 0"
        )
    retention = config.retention
    if retention.notice_days < 0 or retention.batch_size < 1:
        raise ConfigError(
            f"{source}: [retention] notice_days = {retention.notice_days} must be "
            f">= 0 and batch_size = {retention.batch_size} >= 1"
        )
    ttl = config.downloads.url_ttl_s
    if not URL_TTL_RANGE_S[0] <= ttl <= URL_TTL_RANGE_S[1]:
        raise ConfigError(
            f"{source}: [downloads] url_ttl_s = {ttl}: expected "
            f"{URL_TTL_RANGE_S[0]}-{URL_TTL_RANGE_S[1]} s"
        )
    if config.auth.algorithm == "ES256" and not config.auth.public_key_file:
        raise ConfigError(f"{source}: [auth] ES256 needs public_key_file")
    _check_broker(config.broker, source)
    _check_ingest(config.ingest, source)
    _check_models(config.models, source)
    _check_devices(config.devices, source)
    if not config.catalog.url:
        raise ConfigError(f"{source}: [catalog] url must not be empty")
    _check_store(config.store, source)


def _check_store(store: StoreConfig, source: str) -> None:
    if store.encryption == "envelope" and not store.key_file:
        raise ConfigError(
            f"{source}: [store] encryption = 'envelope' needs key_file (32 random "
            "bytes, mode 0600)"
        )
    if store.kind == "local" and store.encryption == "server":
        raise ConfigError(
            f"{source}: [store] the local store cannot encrypt by itself; use "
            "encryption = 'envelope'"
        )
    if store.kind == "azure" and not (
        store.connection_string or (store.account_name and store.account_key)
    ):
        raise ConfigError(
            f"{source}: [store] kind = 'azure' needs connection_string, or "
            "account_name and account_key"
        )


def _check_devices(devices: DevicesConfig, source: str) -> None:
    for name in ("worker_id", "group"):
        value = getattr(devices, name)
        if not value or len(value) > 64 or any(c in value for c in "/+#$ "):
            raise ConfigError(
                f"{source}: [devices] {name} = {value!r}: expected 1-64 characters "
                "without / + # $ or spaces"
            )
    for name in (
        "window_s",
        "flush_interval_s",
        "idle_flush_s",
        "max_age_s",
        "max_future_s",
    ):
        if getattr(devices, name) <= 0:
            raise ConfigError(f"{source}: [devices] {name} must be > 0")
    if devices.max_batch_messages < 1 or devices.session_expiry_s < 1:
        raise ConfigError(
            f"{source}: [devices] max_batch_messages and session_expiry_s must be >= 1"
        )
    if not devices.quarantine_bucket:
        raise ConfigError(f"{source}: [devices] quarantine_bucket must not be empty")


def _check_models(models: ModelsConfig, source: str) -> None:
    if not 0.0 <= models.canary_share <= 1.0:
        raise ConfigError(
            f"{source}: [models] canary_share = {models.canary_share}: expected 0-1"
        )
    if models.root_threshold < 1 or models.min_canaries < 1:
        raise ConfigError(
            f"{source}: [models] root_threshold and min_canaries must be >= 1"
        )
    expiries = ("root", "targets", "snapshot", "timestamp")
    if any(getattr(models, f"{role}_expiry_s") <= 0 for role in expiries):
        raise ConfigError(f"{source}: [models] every *_expiry_s must be > 0")
    if not models.name or "/" in models.name or not models.bucket:
        raise ConfigError(
            f"{source}: [models] name and bucket must be non-empty (name without /)"
        )


def _check_ingest(ingest: IngestConfig, source: str) -> None:
    if not 1 <= ingest.threads <= 64:
        raise ConfigError(
            f"{source}: [ingest] threads = {ingest.threads}: expected 1-64"
        )
    if not ingest.group or any(char in ingest.group for char in "/+#"):
        raise ConfigError(
            f"{source}: [ingest] group = {ingest.group!r}: non-empty, without /+#"
        )
    for name in ("session_expiry_s", "reconcile_interval_s", "relay_interval_s"):
        if getattr(ingest, name) < 0:
            raise ConfigError(f"{source}: [ingest] {name} must be >= 0")


def _check_broker(broker: BrokerConfig, source: str) -> None:
    if not 1 <= broker.port <= 65535:
        raise ConfigError(f"{source}: [broker] port = {broker.port}: expected 1-65535")
    if bool(broker.cert_file) != bool(broker.key_file):
        raise ConfigError(f"{source}: [broker] cert_file and key_file go together")
    if broker.publish_timeout_s <= 0 or broker.keepalive_s <= 0:
        raise ConfigError(
            f"{source}: [broker] publish_timeout_s and keepalive_s must be > 0"
        )
    for name in ("client_id", "gateways_prefix", "cloud_events_topic"):
        value = getattr(broker, name)
        if not value or any(char in value for char in "+#"):
            raise ConfigError(
                f"{source}: [broker] {name} = {value!r}: must be non-empty, "
                "without MQTT wildcards"
            )


def load_config(
    path: Path | None = None, *, env: Mapping[str, str] | None = None
) -> CoordinatorConfig:
    """Read the configuration from ``path`` (None: defaults) and ``env``.

    Raises:
        ConfigError: unreadable file, bad TOML, unknown section or key, a
            value of the wrong type or out of range.
    """
    env = os.environ if env is None else env
    source = str(path) if path else "defaults"
    document: dict[str, Any] = {}
    if path is not None:
        try:
            document = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(f"{path}: {exc.strerror or exc}") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
        except UnicodeDecodeError as exc:
            raise ConfigError(
                f"{path}: not UTF-8 text (byte {exc.start}): a TOML file is UTF-8"
            ) from exc
    unknown = sorted(set(document) - set(_SECTIONS))
    if unknown:
        raise ConfigError(
            f"{source}: unknown sections {unknown}; known: {sorted(_SECTIONS)}"
        )
    sections = {}
    used_env: list[str] = []
    for name, cls in _SECTIONS.items():
        table = document.get(name, {})
        if not isinstance(table, dict):
            raise ConfigError(f"{source}: [{name}] must be a table")
        sections[name] = _section(name, cls, table, source, env, used_env)
    base_dir = Path(path).resolve().parent if path else Path.cwd()
    config = CoordinatorConfig(base_dir=base_dir, **sections)
    # A value out of range may come from the environment: say which were set.
    if used_env:
        source = f"{source} with {', '.join(used_env)} from the environment"
    _check(config, source)
    return config
