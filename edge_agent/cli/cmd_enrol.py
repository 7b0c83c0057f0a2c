"""``edge-agent enrol``: write a gateway's identity and endpoints, check them live.

Writes (or updates, comments kept, see :mod:`.cmd_pair`) ``[gateway] id``,
optionally the workdir, the S3 endpoint and the broker, then checks:

* **object store**: the raw bucket exists (or is created), and a probe
  object ``_edge-agent-probe/{gateway_id}/{uuid}.txt`` can be put, read back
  by HEAD with the right size, and deleted (a store that refuses the delete
  is reported, not failed: gateways often may not delete);
* **broker** (``--broker HOST:PORT`` writes ``[mqtt] enabled/host/port``;
  checked whenever ``[mqtt]`` is enabled): a TCP connection within the
  timeout, then an MQTT CONNECT with the configured TLS files under a
  separate client id (``{id}-enrol-check``, clean start), so the gateway's
  own session and its queued commands are left alone.

Credentials come from the configuration or the usual environment overrides
(``EDGE_AGENT_STORE_ACCESS_KEY_ID``, ``EDGE_AGENT_STORE_SECRET_ACCESS_KEY``).
The file is written before the checks, so an operator can fix the network
and rerun the checks; the exit code says whether they passed.
"""

from __future__ import annotations

import argparse
import hashlib
import socket
import time
import uuid
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from edge_agent.config import ConfigError, GatewayConfig
from edge_agent.custody.errors import KeyFileError
from edge_agent.mqtt import MqttConfig
from edge_agent.service.runtime import store_settings
from edge_agent.upload import (
    BodyChecksum,
    ChecksumMode,
    ObjectStore,
    StorageError,
)
from edge_agent.upload.factory import StoreSettingsError, build_object_store

from .cmd_pair import TomlScalar, update_config_file
from .exit_codes import ExitCode

__all__ = ["CheckResult", "add_parser", "check_broker", "check_object_store"]

DEFAULT_WORKDIR = "/var/lib/edge-agent"
PROBE_PREFIX = "_edge-agent-probe"
# Bound of each check in seconds: long enough for a slow cellular uplink's
# TLS handshake, short enough for an operator waiting at a terminal.
DEFAULT_TIMEOUT_S = 10.0
# paho's loop slice while waiting for CONNACK.
_MQTT_TICK_S = 0.1

TEMPLATE = """\
# Gateway configuration, written by `edge-agent enrol`. Every key and its
# default: deploy/edge-agent.example.toml. Keep secrets in the environment
# (EDGE_AGENT_STORE_SECRET_ACCESS_KEY) rather than here.

[gateway]
"""


@dataclass(frozen=True)
class CheckResult:
    """One live check: what was checked, whether it passed, the detail."""

    name: str
    passed: bool
    detail: str


def _open_store(config: GatewayConfig, timeout_s: float) -> ObjectStore:
    settings = store_settings(config, timeout_s=timeout_s)
    return build_object_store(replace(settings, max_attempts=2))


def check_object_store(
    config: GatewayConfig, timeout_s: float = DEFAULT_TIMEOUT_S
) -> CheckResult:
    """Put, HEAD and delete a probe object in the raw bucket."""
    bucket = config.store.raw_bucket
    key = f"{PROBE_PREFIX}/{config.gateway_id}/{uuid.uuid4().hex}.txt"
    data = f"edge-agent enrol probe from {config.gateway_id}\n".encode()
    sha256_hex = hashlib.sha256(data).hexdigest()
    try:
        store = _open_store(config, timeout_s)
        name = f"object store {store.name}"
        store.ensure_bucket(bucket)
        store.put_object(
            bucket,
            key,
            data,
            metadata={"sha256": sha256_hex, "gateway-id": config.gateway_id},
            checksum=BodyChecksum.of(data, ChecksumMode(config.store.checksum_mode)),
            content_type="text/plain",
        )
        info = store.head_object(bucket, key)
    except (StorageError, OSError, StoreSettingsError, KeyFileError) as exc:
        # OSError: a local store whose root cannot be created; the last two:
        # incomplete [store] settings or an unusable encryption key file.
        return CheckResult("object store", False, f"{bucket}/{key}: {exc}")
    if info is None or info.size_bytes != len(data):
        found = "nothing" if info is None else f"{info.size_bytes} bytes"
        return CheckResult(
            name, False, f"{bucket}/{key}: put {len(data)} bytes, HEAD found {found}"
        )
    try:
        store.delete_object(bucket, key)
    except StorageError as exc:
        return CheckResult(
            name, True, f"put and HEAD {bucket}/{key} ok; delete refused ({exc})"
        )
    return CheckResult(name, True, f"put, HEAD and delete of {bucket}/{key} ok")


def _check_tcp(host: str, port: int, timeout_s: float) -> CheckResult:
    name = f"broker {host}:{port}"
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            pass
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        return CheckResult(name, False, f"no TCP connection: {reason}")
    return CheckResult(name, True, "TCP connection accepted")


def _check_mqtt(mqtt_config: MqttConfig, timeout_s: float) -> CheckResult:
    """CONNECT with the gateway's TLS settings under a separate client id."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode, MQTTProtocolVersion

    from edge_agent.mqtt.tls import build_tls_context

    name = f"broker {mqtt_config.host}:{mqtt_config.port}"
    client_id = f"{mqtt_config.effective_client_id}-enrol-check"
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=MQTTProtocolVersion.MQTTv5,
        reconnect_on_failure=False,
    )
    client.connect_timeout = timeout_s
    replies: list[Any] = []
    client.on_connect = lambda _c, _u, _f, reason, _p: replies.append(reason)
    try:
        if mqtt_config.tls:
            client.tls_set_context(build_tls_context(mqtt_config))
        client.connect(mqtt_config.host, mqtt_config.port, clean_start=True)
        deadline = time.monotonic() + timeout_s
        while not replies and time.monotonic() < deadline:
            if client.loop(timeout=_MQTT_TICK_S) != MQTTErrorCode.MQTT_ERR_SUCCESS:
                break
    except (OSError, ValueError) as exc:
        return CheckResult(name, False, f"MQTT connect failed: {exc}")
    try:
        if not replies:
            return CheckResult(name, False, "no CONNACK (closed or timed out)")
        if replies[0].is_failure:
            return CheckResult(name, False, f"CONNECT refused: {replies[0]}")
        tls = "TLS, " if mqtt_config.tls else "no TLS, "
        return CheckResult(name, True, f"MQTT session accepted ({tls}{client_id})")
    finally:
        client.disconnect()


def check_broker(
    host: str,
    port: int,
    mqtt_config: MqttConfig | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> list[CheckResult]:
    """Check TCP reachability, then an MQTT CONNECT if ``mqtt_config`` is given.

    Args:
        host, port: the broker.
        mqtt_config: an :class:`edge_agent.mqtt.MqttConfig` (TLS files,
            client id); None for the TCP check only.
        timeout_s: bound of each check.
    """
    results = [_check_tcp(host, port, timeout_s)]
    if results[0].passed and mqtt_config is not None:
        settings = replace(mqtt_config, host=host, port=port)
        results.append(_check_mqtt(settings, timeout_s))
    return results


def _broker_argument(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError(f"{text!r}: expected HOST:PORT")
    return host.strip("[]"), int(port)


def add_parser(commands: Any) -> argparse.ArgumentParser:
    """Register the subcommand."""
    parser: argparse.ArgumentParser = commands.add_parser(
        "enrol",
        help="write the gateway id and endpoints into the configuration and "
        "check the object store and broker live",
    )
    parser.add_argument("--config", type=Path, required=True, help="TOML file")
    parser.add_argument("--gateway-id", required=True, metavar="ID")
    parser.add_argument(
        "--workdir", help=f"agent workdir (new files: default {DEFAULT_WORKDIR})"
    )
    parser.add_argument("--store-endpoint", metavar="URL", help="S3 endpoint URL")
    parser.add_argument("--store-region", metavar="REGION", help="S3 region")
    parser.add_argument(
        "--broker", type=_broker_argument, metavar="HOST:PORT", help="MQTT broker"
    )
    parser.add_argument(
        "--timeout-s", type=float, default=DEFAULT_TIMEOUT_S, help="bound per check"
    )
    parser.set_defaults(run=run)
    return parser


def _edits(args: argparse.Namespace, new_file: bool) -> dict[tuple[str, ...], Any]:
    gateway: dict[str, TomlScalar] = {"id": args.gateway_id}
    if args.workdir or new_file:
        gateway["workdir"] = args.workdir or DEFAULT_WORKDIR
    edits: dict[tuple[str, ...], dict[str, TomlScalar]] = {("gateway",): gateway}
    if args.store_endpoint:
        store: dict[str, TomlScalar] = {
            "kind": "s3",
            "endpoint_url": args.store_endpoint,
        }
        if args.store_region:
            store["region"] = args.store_region
        edits[("store",)] = store
    if args.broker:
        host, port = args.broker
        edits[("mqtt",)] = {"enabled": True, "host": host, "port": port}
    return edits


def run(args: argparse.Namespace) -> ExitCode:
    """Write the configuration, run the checks, print what passed."""
    if not args.gateway_id.strip() or "/" in args.gateway_id:
        raise ConfigError(f"--gateway-id {args.gateway_id!r}: expected an id without /")
    new_file = not args.config.exists()
    config = update_config_file(args.config, _edits(args, new_file), template=TEMPLATE)
    verb = "wrote" if new_file else "updated"
    print(f"{verb} {args.config}: gateway {config.gateway_id}")

    results = [check_object_store(config, args.timeout_s)]
    if config.mqtt.enabled:
        mqtt = config.mqtt
        results += check_broker(mqtt.host, mqtt.port, mqtt, args.timeout_s)
    for result in results:
        print(
            f"  {'PASS' if result.passed else 'FAIL'}  {result.name}: {result.detail}"
        )
    if all(result.passed for result in results):
        return ExitCode.OK
    if not results[0].passed:
        return ExitCode.STORE_UNAVAILABLE
    return ExitCode.BROKER_UNAVAILABLE
