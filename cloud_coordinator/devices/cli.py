"""``cloud-coordinator devices``: run a device-data worker, manage devices."""

from __future__ import annotations

import argparse
import logging
import signal
import threading
from typing import Any

from ..broker import BrokerError, CloudMqttClient, MessageHandler
from ..catalog import Device, InvalidRecord
from ..config import CoordinatorConfig
from ..ingest.command import EXIT_BROKER
from ..wiring import build_catalog, build_store
from .samples import SampleLimits
from .worker import DeviceDataWorker, DeviceWorkerSettings

__all__ = ["add_command", "worker_settings"]

_LOGGER = logging.getLogger(__name__)

_EXIT_OK = 0
_EXIT_USAGE = 2

_DESCRIPTION = """\
Online devices publish JSON samples (schema device-sample/1: ts as ISO 8601
with a zone or a number with ts_unit s|ms|us|ns, and readings
{"name": {"value": x, "unit": "g"}}) to devices/{id}/data.

run       consume them through the shared subscription
          $share/<[devices] group>/<[broker] devices_prefix>/+/data on the
          broker in [broker] (TLS, the cloud service account's certificate),
          check each one, and write one gzip CSV per device, worker and
          [devices] window_s into the raw bucket ([store], [buckets]) under
          the rider's prefix, catalogued in [catalog]. Messages are
          acknowledged only after the commit ([devices] flush_interval_s,
          max_batch_messages, idle_flush_s); refused ones are kept in [devices]
          quarantine_bucket with the reason. [devices] worker_id must be
          stable and unique per worker (it names the MQTT session and the
          objects). Exit codes as for every command, plus 6: broker
          unreachable.
register  map a device to the rider (and suit id) its samples belong to.
list      print the registered devices."""


def add_command(commands: Any) -> None:
    """Add ``devices`` and its sub-commands to the ``cloud-coordinator`` parser."""
    parser = commands.add_parser(
        "devices",
        help="live device data over MQTT, and the device registry",
        description=_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = parser.add_subparsers(dest="devices_command", required=True)
    run = actions.add_parser("run", help="run a device-data worker")
    run.add_argument("--worker-id", help="default: [devices] worker_id")
    run.add_argument(
        "--no-migrate", action="store_true", help="do not apply catalog migrations"
    )
    register = actions.add_parser("register", help="map a device to a rider")
    register.add_argument("--device", required=True, help="device id (topic level)")
    register.add_argument("--rider", required=True, help="rider id")
    register.add_argument("--suit", default="", help="suit id (default: device id)")
    listing = actions.add_parser("list", help="print the registered devices")
    listing.add_argument("--rider", help="only this rider's devices")
    parser.set_defaults(run=run_devices)


def worker_settings(
    config: CoordinatorConfig, worker_id: str | None = None
) -> DeviceWorkerSettings:
    """Return the worker settings of ``config`` ([devices], [broker])."""
    devices = config.devices
    return DeviceWorkerSettings(
        worker_id=worker_id or devices.worker_id,
        devices_prefix=config.broker.devices_prefix,
        share_group=devices.group,
        window_s=devices.window_s,
        flush_interval_s=devices.flush_interval_s,
        max_batch_messages=devices.max_batch_messages,
        idle_flush_s=devices.idle_flush_s,
        session_expiry_s=devices.session_expiry_s,
        quarantine_bucket=devices.quarantine_bucket,
        limits=SampleLimits(devices.max_age_s, devices.max_future_s),
    )


def _run_worker(config: CoordinatorConfig, args: argparse.Namespace) -> int:
    settings = worker_settings(config, args.worker_id)
    catalog = build_catalog(config)
    try:
        if not args.no_migrate:
            catalog.migrate()

        def client_factory(handler: MessageHandler) -> CloudMqttClient:
            return CloudMqttClient.from_config(
                config,
                client_id=f"{config.broker.client_id}-devices-{settings.worker_id}",
                handler=handler,
                subscriptions=[(settings.subscription, 1)],
                manual_ack=True,
                session_expiry_s=settings.session_expiry_s,
            )

        worker = DeviceDataWorker(
            settings, build_store(config), catalog, config.buckets, client_factory
        )
        stop = threading.Event()

        def on_signal(signum: int, _frame: object) -> None:
            _LOGGER.info(
                "devices %s: %s received; flushing and stopping",
                settings.worker_id,
                signal.Signals(signum).name,
            )
            stop.set()

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        try:
            worker.run(stop)
        except BrokerError as exc:
            _LOGGER.error("devices %s: %s", settings.worker_id, exc)
            return EXIT_BROKER
        return _EXIT_OK
    finally:
        catalog.close()


def run_devices(config: CoordinatorConfig, args: argparse.Namespace) -> int:
    """Run one ``devices`` sub-command; return the exit code."""
    if args.devices_command == "run":
        return _run_worker(config, args)
    catalog = build_catalog(config)
    try:
        catalog.migrate()
        if args.devices_command == "register":
            try:
                device = catalog.upsert_device(
                    Device(args.device, args.rider, args.suit)
                )
            except InvalidRecord as exc:
                print(f"cloud-coordinator devices: {exc}")
                return _EXIT_USAGE
            print(
                f"device {device.device_id}: rider {device.rider_id}, "
                f"suit {device.suit_id}"
            )
            return _EXIT_OK
        for device in catalog.list_devices(args.rider):
            print(f"{device.device_id:24} {device.rider_id:24} {device.suit_id}")
        return _EXIT_OK
    finally:
        catalog.close()
