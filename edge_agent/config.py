"""Gateway configuration: TOML file, environment overrides, validated values.

A configuration error names the key, the value found and what is allowed, so
an operator can fix the file without reading code::

    [gateway]
    id = "gw-garage-01"
    workdir = "/var/lib/edge-agent"

    [store]
    kind = "local"            # or "s3", "azure"
    root = "/var/lib/edge-agent/store"
    encryption = "none"       # "server" (SSE-S3; Azure always) or "envelope"
    key_file = ""             # envelope: active key-encryption key (0600)
    old_key_files = ""        # envelope: older keys, comma-separated (rotation)
    connection_string = ""    # azure: or account_name + account_key

    [ble]
    backend = "bluez"         # or "emulated" (demo and tests)

    [custody]                 # all optional
    budget_bytes = 8_000_000_000          # disk budget of the buffer; 0: none
    key_file = "/etc/edge-agent/custody.key"  # encrypt logs and outputs at rest
    work_dir = "/run/edge-agent"          # plaintext working copies (tmpfs)

    [gating]                  # all optional; the defaults follow the design
    upload_requires_external_power = true
    uplink_probe = "s3.example.net:443"   # default: the store endpoint

    [service]
    step_stall_s = 1800.0     # no progress this long: watchdog pings stop

    [metrics]
    port = 9464               # Prometheus on 127.0.0.1; 0: off

    [models]                  # signed model updates (edge_agent.modelmgr)
    enabled = true
    repository_url = "store://models"
    trusted_root = "/etc/edge-agent/tuf-root.json"

    [suits.SUIT-0001]
    rider_id = "r1"
    user_type = "private"     # or "professional"
    product = "lightweight"   # or "extended"

Environment variables ``EDGE_AGENT_<SECTION>_<KEY>`` (upper case) override
scalar keys, e.g. ``EDGE_AGENT_STORE_ENDPOINT_URL``.
"""

from __future__ import annotations

import math
import os
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from edge_agent.modelmgr.config import ModelUpdateConfig
from edge_agent.mqtt.config import MqttConfig
from edge_agent.mqtt.errors import MqttConfigError

__all__ = [
    "BleConfig",
    "ConfigError",
    "CustodyConfig",
    "GatewayConfig",
    "ProcessingConfig",
    "RetentionConfig",
    "StoreConfig",
    "SuitIdentity",
    "load_config",
]

ENV_PREFIX = "EDGE_AGENT_"


class ConfigError(ValueError):
    """The configuration file or an override is invalid."""


@dataclass(frozen=True)
class SuitIdentity:
    """How a paired suit maps to a rider."""

    serial: str
    rider_id: str
    user_type: str = "private"
    product: str = "lightweight"


@dataclass(frozen=True)
class StoreConfig:
    """Where uploads go: a local directory (embedded default), S3 or Azure Blob."""

    kind: str = "local"
    root: str = "store"
    endpoint_url: str | None = None
    region: str = "us-east-1"
    access_key_id: str | None = None
    secret_access_key: str | None = None
    raw_bucket: str = "raw"
    analytics_bucket: str = "analytics"
    crash_bucket: str = "crash"
    checksum_mode: str = "md5"
    multipart_threshold_bytes: int = 16 * 1024 * 1024
    part_size_bytes: int = 8 * 1024 * 1024
    # Azure Blob (kind "azure"): a connection string, or account and key;
    # endpoint_url is then the account's blob endpoint (default: Azure's).
    connection_string: str = ""
    account_name: str = ""
    account_key: str = ""
    uploads_container: str = "suitlink-multipart"
    # Encryption at rest: "none", "server" or "envelope" (see
    # edge_agent.upload.factory); key files relative to the workdir.
    encryption: str = "none"
    key_file: str = ""
    old_key_files: str = ""


@dataclass(frozen=True)
class BleConfig:
    """How the gateway reaches suits."""

    backend: str = "bluez"
    # The BlueZ adapter the agent owns (a lock keeps a second agent off it).
    adapter: str = "hci0"
    # For backend "emulated": the bumble HCI transport of the emulated radio,
    # e.g. "tcp-client:127.0.0.1:PORT" as printed by `firmware-bridge emulate`.
    hci_transport: str = ""
    scan_timeout_s: float = 10.0
    connect_attempts: int = 4
    idle_poll_s: float = 30.0


@dataclass(frozen=True)
class ProcessingConfig:
    """Processing knobs."""

    gzip_level: int = 1
    chunk_s: float = 60.0
    # Keep labelled windows of each processed log in buffer/fl-windows.db for
    # federated training (bounded; riders who opted out are never kept).
    training_windows: bool = True


@dataclass(frozen=True)
class RetentionConfig:
    """What stays on the gateway after the cloud has committed a log."""

    purge_after_release: bool = True


@dataclass(frozen=True)
class CustodyConfig:
    """The custody buffer's disk budget and encryption at rest.

    Absent keys keep the defaults: no budget, no encryption, working copies
    under the buffer. Relative paths are taken from the gateway's workdir.
    """

    # Bytes the buffer may hold (logs, outputs, index, quarantine); 0: no limit.
    budget_bytes: int = 0
    # Key file (32 raw bytes or 64 hex digits, mode 0600); empty: no encryption.
    key_file: str = ""
    # Plaintext working copies while encrypting go to its work/ subfolder;
    # empty: <workdir>/buffer/work. Put it on tmpfs so no plaintext reaches flash.
    work_dir: str = ""


@dataclass(frozen=True)
class GatingConfig:
    """When work may run (see :mod:`edge_agent.service.gating`).

    Pull only while the suit charges; upload while the uplink works and the
    gateway is on external power; train only when idle, online and on
    external power. Each condition can be switched off here.
    """

    pull_requires_charging: bool = True
    upload_requires_external_power: bool = True
    upload_requires_uplink: bool = True
    training_requires_idle: bool = True
    training_requires_external_power: bool = True
    training_requires_uplink: bool = True
    # The OS power-supply information; tests point this at a fake tree.
    power_supply_root: str = "/sys/class/power_supply"
    # "host:port" to probe for the uplink; empty: the object store endpoint.
    uplink_probe: str = ""
    uplink_timeout_s: float = 3.0


@dataclass(frozen=True)
class ServiceConfig:
    """How the service behaves under systemd (see edge_agent.service.systemd)."""

    # Longest a step may go without progress before the watchdog pings stop
    # and systemd restarts the agent. One log's processing or upload reports
    # progress only when it ends, so this must exceed the slowest of those.
    step_stall_s: float = 1800.0


@dataclass(frozen=True)
class MetricsConfig:
    """Prometheus metrics on 127.0.0.1:port (0: no metrics endpoint)."""

    port: int = 0


@dataclass(frozen=True)
class GatewayConfig:
    """The whole configuration of one gateway."""

    gateway_id: str
    workdir: Path
    store: StoreConfig = field(default_factory=StoreConfig)
    ble: BleConfig = field(default_factory=BleConfig)
    processing: ProcessingConfig = field(default_factory=ProcessingConfig)
    retention: RetentionConfig = field(default_factory=RetentionConfig)
    gating: GatingConfig = field(default_factory=GatingConfig)
    service: ServiceConfig = field(default_factory=ServiceConfig)
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    suits: dict[str, SuitIdentity] = field(default_factory=dict)
    custody: CustodyConfig = field(default_factory=CustodyConfig)
    mqtt: MqttConfig = field(default_factory=MqttConfig)
    models: ModelUpdateConfig = field(default_factory=ModelUpdateConfig)

    @property
    def store_root(self) -> Path:
        """Return the local store's root, relative paths taken from workdir."""
        root = Path(self.store.root)
        return root if root.is_absolute() else self.workdir / root

    def _from_workdir(self, value: str) -> Path | None:
        if not value:
            return None
        path = Path(value).expanduser()
        return path if path.is_absolute() else self.workdir / path

    @property
    def store_key_file(self) -> Path | None:
        """Return the store's active encryption key file, or None."""
        return self._from_workdir(self.store.key_file)

    @property
    def custody_key_file(self) -> Path | None:
        """Return the custody key file, or None when encryption is off."""
        return self._from_workdir(self.custody.key_file)

    @property
    def custody_work_dir(self) -> Path | None:
        """Return the folder for plaintext working copies (None: the default)."""
        return self._from_workdir(self.custody.work_dir)

    @property
    def custody_budget_bytes(self) -> int | None:
        """Return the buffer's disk budget, or None for no limit."""
        return self.custody.budget_bytes or None

    def identity(self, serial: str) -> SuitIdentity | None:
        """Return the rider mapping of a suit, or None for an unpaired suit."""
        return self.suits.get(serial)


_ALLOWED: dict[tuple[str, str], tuple[str, ...]] = {
    ("store", "kind"): ("local", "s3", "azure"),
    ("store", "encryption"): ("none", "server", "envelope"),
    ("store", "checksum_mode"): ("md5", "sha256", "crc32"),
    ("ble", "backend"): ("bluez", "emulated"),
}
_SUIT_ALLOWED = {
    "user_type": ("private", "professional"),
    "product": ("lightweight", "extended"),
}


# Spellings of a boolean accepted from environment variables.
_BOOL_WORDS = {
    "true": True,
    "yes": True,
    "on": True,
    "1": True,
    "false": False,
    "no": False,
    "off": False,
    "0": False,
}


def _from_text(where: str, text: str, expected: type) -> Any:
    """Convert an environment variable's text to ``expected``."""
    if expected is bool:
        word = text.strip().lower()
        if word not in _BOOL_WORDS:
            raise ConfigError(
                f"{where} = {text!r}: expected a boolean "
                f"({', '.join(sorted(_BOOL_WORDS))})"
            )
        return _BOOL_WORDS[word]
    try:
        return expected(text.strip())
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where} = {text!r}: expected {expected.__name__}") from exc


def _coerce(section: str, key: str, value: Any, default: Any, source: str) -> Any:
    where = f"{source}: [{section}] {key}"
    expected = type(default) if default is not None else str
    if isinstance(value, str) and expected is not str:
        value = _from_text(where, value, expected)
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"{where} = {value!r}: expected a finite number")
    if not isinstance(value, expected):
        raise ConfigError(
            f"{where} = {value!r}: expected {expected.__name__}, "
            f"found {type(value).__name__}"
        )
    allowed = _ALLOWED.get((section, key))
    if allowed and value not in allowed:
        raise ConfigError(f"{where} = {value!r}: allowed values are {allowed}")
    return value


def _section(cls: type[Any], section: str, raw: dict[str, Any], source: str) -> Any:
    known = {f.name: f for f in fields(cls)}
    values: dict[str, Any] = {}
    defaults = cls()
    for key, value in raw.items():
        if key not in known:
            raise ConfigError(
                f"{source}: [{section}] has unknown key '{key}'; "
                f"known keys: {sorted(known)}"
            )
        values[key] = _coerce(section, key, value, getattr(defaults, key), source)
    for key in known:
        env_name = f"{ENV_PREFIX}{section}_{key}".upper()
        env = os.environ.get(env_name)
        if env is not None:
            values[key] = _coerce(
                section, key, env, getattr(defaults, key), f"environment {env_name}"
            )
    return replace(defaults, **values)


def _suits(raw: dict[str, Any], source: str) -> dict[str, SuitIdentity]:
    suits: dict[str, SuitIdentity] = {}
    for serial, entry in raw.items():
        if not isinstance(entry, dict) or "rider_id" not in entry:
            raise ConfigError(f"{source}: [suits.{serial}] needs a rider_id")
        for key, allowed in _SUIT_ALLOWED.items():
            if key in entry and entry[key] not in allowed:
                raise ConfigError(
                    f"{source}: [suits.{serial}] {key} = {entry[key]!r}: "
                    f"allowed values are {allowed}"
                )
        unknown = set(entry) - {"rider_id", *_SUIT_ALLOWED}
        if unknown:
            raise ConfigError(
                f"{source}: [suits.{serial}] unknown keys {sorted(unknown)}"
            )
        suits[serial] = SuitIdentity(serial=serial, **entry)
    return suits


def config_from_mapping(raw: dict[str, Any], source: str = "<config>") -> GatewayConfig:
    """Build a validated configuration from parsed TOML."""
    gateway = raw.get("gateway", {})
    if "id" not in gateway:
        raise ConfigError(f"{source}: [gateway] id is required")
    sections = {
        "store": StoreConfig,
        "ble": BleConfig,
        "processing": ProcessingConfig,
        "custody": CustodyConfig,
    }
    operations: dict[str, type[Any]] = {
        "gating": GatingConfig,
        "service": ServiceConfig,
        "metrics": MetricsConfig,
        "models": ModelUpdateConfig,
    }
    known = {"gateway", "suits", "retention", "mqtt", *sections, *operations}
    unknown = set(raw) - known
    if unknown:
        raise ConfigError(f"{source}: unknown sections {sorted(unknown)}")
    return GatewayConfig(
        gateway_id=str(gateway["id"]),
        workdir=Path(gateway.get("workdir", ".")).expanduser(),
        store=_section(StoreConfig, "store", raw.get("store", {}), source),
        ble=_section(BleConfig, "ble", raw.get("ble", {}), source),
        processing=_checked(
            "processing",
            _section(ProcessingConfig, "processing", raw.get("processing", {}), source),
            source,
        ),
        retention=_section(
            RetentionConfig, "retention", raw.get("retention", {}), source
        ),
        suits=_suits(raw.get("suits", {}), source),
        custody=_custody(raw.get("custody", {}), source),
        mqtt=_mqtt(raw.get("mqtt", {}), source, str(gateway["id"])),
        **{
            name: _checked(name, _section(cls, name, raw.get(name, {}), source), source)
            for name, cls in operations.items()
        },
    )


def _mqtt(raw: dict[str, Any], source: str, gateway_id: str) -> MqttConfig:
    mqtt: MqttConfig = _section(MqttConfig, "mqtt", raw, source)
    if not mqtt.gateway_id:
        mqtt = replace(mqtt, gateway_id=gateway_id)
    if mqtt.enabled:
        try:
            mqtt.validate()
        except MqttConfigError as exc:
            raise ConfigError(f"{source}: {exc}") from exc
    return mqtt


def _custody(raw: dict[str, Any], source: str) -> CustodyConfig:
    custody: CustodyConfig = _section(CustodyConfig, "custody", raw, source)
    if custody.budget_bytes < 0:
        raise ConfigError(
            f"{source}: [custody] budget_bytes = {custody.budget_bytes}: expected "
            "a byte count >= 0 (0: no limit)"
        )
    return custody


# Bounds of the operations sections: (section, key) -> (low, high, what).
_BOUNDS: dict[tuple[str, str], tuple[float, float, str]] = {
    ("gating", "uplink_timeout_s"): (0.1, 60.0, "0.1..60 seconds"),
    ("service", "step_stall_s"): (1.0, 86400.0, "1..86400 seconds"),
    ("metrics", "port"): (0, 65535, "0 (off) or a TCP port 1..65535"),
    ("models", "check_interval_s"): (1.0, 7 * 86400.0, "1..604800 seconds"),
    # gzip levels are 0 (stored) to 9; CSV chunks between 1 s and an hour.
    ("processing", "gzip_level"): (0, 9, "0..9"),
    ("processing", "chunk_s"): (1.0, 3600.0, "1..3600 seconds"),
}


def _checked(section: str, value: Any, source: str) -> Any:
    """Check the bounds of an operations section (gating, service, metrics)."""
    for (name, key), (low, high, what) in _BOUNDS.items():
        if name != section:
            continue
        found = getattr(value, key)
        if not low <= found <= high:
            raise ConfigError(
                f"{source}: [{section}] {key} = {found!r}: expected {what}"
            )
    probe = getattr(value, "uplink_probe", "")
    host, _, port = probe.rpartition(":")
    if probe and not (host and port.isdigit() and 0 < int(port) < 65536):
        raise ConfigError(
            f"{source}: [gating] uplink_probe = {probe!r}: expected 'host:port'"
        )
    return value


def load_config(path: str | Path) -> GatewayConfig:
    """Read and validate a TOML configuration file."""
    try:
        with open(path, "rb") as stream:
            raw = tomllib.load(stream)
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: configuration file not found") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{path}: not UTF-8 text (byte {exc.start}): a TOML file is UTF-8"
        ) from exc
    return config_from_mapping(raw, source=str(path))
