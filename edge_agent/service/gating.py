"""When the gateway may pull, upload and train: power, uplink, suit charging.

The rules (each one can be switched off in the ``[gating]`` section):

* **pull** from a suit only while the suit charges (protects its battery);
* **upload** while the uplink works and the gateway is on external power;
* **train** (federated rounds) only when the gateway is idle, online and on
  external power.

Power comes from the OS power-supply class (``/sys/class/power_supply``;
the root is configurable so tests use a fake tree). Each entry has a
``type`` (Mains, USB, Wireless, Battery, UPS), an ``online`` flag (external
supplies) and a ``status`` (batteries: Charging, Discharging, Full, Not
charging). The gateway is on external power when

1. an external supply reports ``online = 1``; or else
2. a battery or UPS says Charging, Full or Not charging; or else
3. no battery reports Discharging and no external supply reports offline
   next to a battery; in particular a gateway without a battery, or without
   any power-supply entry, always counts as on external power.

Batteries of peripherals (``scope = Device``: a Bluetooth mouse, say) are
ignored.

The uplink is up when a TCP connect to the object store's endpoint (or the
configured ``uplink_probe`` host:port) succeeds within the timeout; a local
store needs no uplink and always counts as up. A TCP connect proves the
route and the listener, not the credentials: ``edge-agent enrol`` checks
those.

Nothing here raises on odd sysfs content: an unreadable file counts as
absent, and a failed probe is a result ("uplink down: ..."), not an error.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from edge_agent.config import GatewayConfig, GatingConfig
from edge_agent.upload.factory import azure_blob_endpoint

__all__ = [
    "REASON_NOT_IDLE",
    "REASON_ON_BATTERY",
    "REASON_SUIT_NOT_CHARGING",
    "Conditions",
    "GateDecision",
    "PowerState",
    "UplinkState",
    "async_probe_uplink",
    "async_read_conditions",
    "pull_gate",
    "read_power_state",
    "uplink_target",
]

_LOGGER = logging.getLogger(__name__)

REASON_SUIT_NOT_CHARGING = "suit not charging"
REASON_ON_BATTERY = "gateway on battery"
REASON_UPLINK_DOWN = "uplink down"
REASON_NOT_IDLE = "gateway not idle"

# Supply types that feed the gateway from outside; the rest store energy.
_EXTERNAL_TYPES = frozenset({"mains", "usb", "usb_c", "usb_pd", "wireless"})
_STORAGE_TYPES = frozenset({"battery", "ups"})
# Battery states that mean external power is connected.
_PLUGGED_STATUS = frozenset({"charging", "full", "not charging"})
# Default ports of endpoint URL schemes, for the uplink probe.
_SCHEME_PORTS = {"https": 443, "http": 80}
# AWS's regional S3 endpoint, probed when an S3 store has no endpoint_url.
_AWS_ENDPOINT = "s3.{region}.amazonaws.com"


@dataclass(frozen=True)
class PowerState:
    """Whether the gateway runs on external power, and what says so."""

    external: bool
    detail: str


@dataclass(frozen=True)
class UplinkState:
    """Whether the uplink works; ``target`` is None for a local store."""

    up: bool
    target: str | None
    detail: str


@dataclass(frozen=True)
class GateDecision:
    """Whether some work may run now; ``reason`` says why not."""

    allowed: bool
    reason: str | None = None


_ALLOWED = GateDecision(True)


def _read(entry: Path, name: str) -> str:
    try:
        return (entry / name).read_text(encoding="ascii", errors="replace").strip()
    except OSError:
        return ""


def read_power_state(root: Path) -> PowerState:
    """Read the power-supply class under ``root``; see the module docstring."""
    try:
        entries = sorted(p for p in root.iterdir() if p.is_dir())
    except OSError:
        return PowerState(True, f"no power-supply information in {root}")
    online, offline, plugged, discharging = [], [], [], []
    for entry in entries:
        kind = _read(entry, "type").lower()
        if kind in _EXTERNAL_TYPES:
            state = _read(entry, "online")
            if state == "1":
                online.append(entry.name)
            elif state == "0":
                offline.append(entry.name)
        elif kind in _STORAGE_TYPES and _read(entry, "scope").lower() != "device":
            status = _read(entry, "status").lower()
            if status in _PLUGGED_STATUS:
                plugged.append(f"{entry.name} {status}")
            elif status == "discharging":
                discharging.append(entry.name)
            elif offline:
                discharging.append(f"{entry.name} ({status or 'no status'})")
    if online:
        return PowerState(True, f"external supply online: {', '.join(online)}")
    if plugged:
        return PowerState(True, f"battery says plugged in: {', '.join(plugged)}")
    if discharging:
        return PowerState(False, f"battery discharging: {', '.join(discharging)}")
    return PowerState(True, "no battery in use")


def uplink_target(config: GatewayConfig) -> tuple[str, int] | None:
    """Return the host and port the uplink probe connects to (None: local store).

    Raises:
        ValueError: the store endpoint URL names no host (StoreSettingsError
            for an Azure store).
    """
    probe = config.gating.uplink_probe
    if probe:
        host, _, port = probe.rpartition(":")
        return host.strip("[]"), int(port)
    if config.store.kind == "azure":
        store = config.store
        return azure_blob_endpoint(
            store.connection_string, store.account_name, store.endpoint_url or ""
        )
    if config.store.kind != "s3":
        return None
    if config.store.endpoint_url is None:
        return _AWS_ENDPOINT.format(region=config.store.region), 443
    url = urlsplit(config.store.endpoint_url)
    if not url.hostname:
        raise ValueError(
            f"[store] endpoint_url = {config.store.endpoint_url!r}: no host to probe"
        )
    return url.hostname, url.port or _SCHEME_PORTS.get(url.scheme, 443)


async def async_probe_uplink(
    target: tuple[str, int] | None, timeout_s: float
) -> UplinkState:
    """Open and close one TCP connection to ``target`` within ``timeout_s``."""
    if target is None:
        return UplinkState(True, None, "local store: no uplink needed")
    host, port = target
    where = f"{host}:{port}"
    try:
        async with asyncio.timeout(timeout_s):
            _reader, writer = await asyncio.open_connection(host, port)
            writer.close()
            await writer.wait_closed()
    except TimeoutError:
        return UplinkState(
            False, where, f"no TCP connection to {where} in {timeout_s:g} s"
        )
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        return UplinkState(False, where, f"TCP connect to {where} failed: {reason}")
    return UplinkState(True, where, f"TCP connect to {where} succeeded")


def pull_gate(charging: bool, rules: GatingConfig) -> GateDecision:
    """Return whether a docked suit may be pulled from."""
    if rules.pull_requires_charging and not charging:
        return GateDecision(False, REASON_SUIT_NOT_CHARGING)
    return _ALLOWED


@dataclass(frozen=True)
class Conditions:
    """The gateway's power and uplink at one moment."""

    power: PowerState
    uplink: UplinkState

    def upload_gate(self, rules: GatingConfig) -> GateDecision:
        """Return whether uploads may run under ``rules``."""
        if rules.upload_requires_external_power and not self.power.external:
            return GateDecision(False, REASON_ON_BATTERY)
        if rules.upload_requires_uplink and not self.uplink.up:
            return GateDecision(False, f"{REASON_UPLINK_DOWN}: {self.uplink.detail}")
        return _ALLOWED

    def training_gate(self, rules: GatingConfig, *, idle: bool) -> GateDecision:
        """Return whether a federated round may run; ``idle``: no custody work."""
        if rules.training_requires_idle and not idle:
            return GateDecision(False, REASON_NOT_IDLE)
        if rules.training_requires_external_power and not self.power.external:
            return GateDecision(False, REASON_ON_BATTERY)
        if rules.training_requires_uplink and not self.uplink.up:
            return GateDecision(False, f"{REASON_UPLINK_DOWN}: {self.uplink.detail}")
        return _ALLOWED

    def as_dict(self) -> dict[str, Any]:
        """Return the conditions for status documents (JSON types only)."""
        return {
            "external_power": self.power.external,
            "power_detail": self.power.detail,
            "uplink_up": self.uplink.up,
            "uplink_target": self.uplink.target,
            "uplink_detail": self.uplink.detail,
        }


async def async_read_conditions(config: GatewayConfig) -> Conditions:
    """Read the power supply and probe the uplink (bounded by the timeout)."""
    rules = config.gating
    power = read_power_state(Path(rules.power_supply_root))
    try:
        target = uplink_target(config)
    except ValueError as exc:
        uplink = UplinkState(False, None, str(exc))
    else:
        uplink = await async_probe_uplink(target, rules.uplink_timeout_s)
    return Conditions(power, uplink)
