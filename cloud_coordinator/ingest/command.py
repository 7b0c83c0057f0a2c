"""``cloud-coordinator ingest``: run an ingest worker (or one reconciliation)."""

from __future__ import annotations

import argparse
import logging
import signal
import socket
import threading
from typing import Any

from ..broker import BrokerError, events_subscription
from ..config import CoordinatorConfig
from ..wiring import build_catalog, build_store
from .reconcile import reconcile
from .verify import VerifyMode
from .worker import IngestWorker, WorkerSettings

__all__ = ["EXIT_BROKER", "add_command", "run_ingest"]

_LOGGER = logging.getLogger(__name__)

# Exit code when the broker cannot be reached or refuses the service account
# (the shared codes 0-5 are in cloud_coordinator.cli).
EXIT_BROKER = 6


def add_command(commands: Any) -> None:
    """Add the ``ingest`` subcommand to the CLI's subparsers."""
    parser = commands.add_parser(
        "ingest",
        help="catalogue gateways' uploads from their MQTT events",
        description=(
            "Consume gateways' log_uploaded and crash_detected events from the "
            "broker in [broker] (TLS with the cloud service account's "
            "certificate) through the shared subscription "
            "$share/<[ingest] group>/<[broker] gateways_prefix>/+/events, so "
            "any number of workers split the load. Each object is checked in "
            "the store ([store], [buckets]; [ingest] verify = hash reads and "
            "hashes it) before it is catalogued in [catalog]; events are "
            "acknowledged only after the commit. Bad input is kept in the "
            "catalog's ingest_quarantine table. The worker also publishes crash "
            "notifications on [broker] cloud_events_topic and lists the buckets "
            "every [ingest] reconcile_interval_s to catalogue objects whose "
            "event was lost. Exit codes as for every command, plus 6: broker "
            "unreachable."
        ),
    )
    parser.add_argument(
        "--client-id",
        help="MQTT client id; stable per worker, unique among workers "
        "(default: [broker] client_id + '-ingest-' + host name)",
    )
    parser.add_argument(
        "--threads", type=int, help="processing threads (default: [ingest] threads)"
    )
    parser.add_argument(
        "--reconcile-once",
        action="store_true",
        help="list the buckets once, catalogue what is missing, and exit",
    )
    parser.add_argument(
        "--quarantine",
        type=int,
        metavar="N",
        help="print the N most recently seen quarantined inputs and exit",
    )
    parser.add_argument(
        "--no-migrate", action="store_true", help="do not apply catalog migrations"
    )
    parser.set_defaults(run=run_ingest)


def _settings(config: CoordinatorConfig, args: argparse.Namespace) -> WorkerSettings:
    ingest = config.ingest
    return WorkerSettings(
        group=ingest.group,
        threads=args.threads or ingest.threads,
        verify=VerifyMode(ingest.verify),
        session_expiry_s=ingest.session_expiry_s,
        reconcile_interval_s=ingest.reconcile_interval_s,
        relay_interval_s=ingest.relay_interval_s,
        relay_analytics=ingest.relay_analytics,
        temp_dir=config.path(ingest.temp_dir),
    )


def run_ingest(config: CoordinatorConfig, args: argparse.Namespace) -> int:
    """Run the worker until SIGTERM or SIGINT; return the exit code."""
    settings = _settings(config, args)
    catalog = build_catalog(config)
    store = build_store(config)
    try:
        if not args.no_migrate:
            catalog.migrate()
        if args.quarantine is not None:
            for entry in catalog.list_quarantine(limit=max(1, args.quarantine)):
                seen = entry.last_seen.isoformat() if entry.last_seen else "?"
                print(
                    f"#{entry.quarantine_id} {seen} x{entry.times_seen} "
                    f"{entry.source}: {entry.reason} ({len(entry.payload)} bytes)"
                )
            return 0
        if args.reconcile_once:
            report = reconcile(
                catalog,
                store,
                buckets=config.buckets,
                verify=settings.verify,
                temp_dir=settings.temp_dir,
            )
            print(
                f"reconcile: {report.listed} objects listed, "
                f"{len(report.catalogued)} catalogued, "
                f"{len(report.quarantined)} kept aside"
            )
            return 0
        client_id = (
            args.client_id or f"{config.broker.client_id}-ingest-{socket.gethostname()}"
        )
        worker = IngestWorker(
            catalog,
            store,
            config.broker,
            client_id=client_id,
            settings=settings,
            buckets=config.buckets,
            base_dir=config.base_dir,
        )
        stop = threading.Event()

        def on_signal(signum: int, _frame: object) -> None:
            _LOGGER.info("ingest: %s received; finishing", signal.Signals(signum).name)
            stop.set()

        previous = {
            signum: signal.signal(signum, on_signal)
            for signum in (signal.SIGTERM, signal.SIGINT)
        }
        try:
            try:
                worker.start()
            except BrokerError as exc:
                _LOGGER.error(
                    "ingest: %s (subscription %s)",
                    exc,
                    events_subscription(config.broker, settings.group),
                )
                return EXIT_BROKER
            try:
                worker.wait(stop)
            finally:
                worker.stop()
            return 0
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
    finally:
        catalog.close()
