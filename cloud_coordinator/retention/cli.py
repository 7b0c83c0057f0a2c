"""``cloud-coordinator retention``: one run of the retention job.

Run it daily from cron or the shipped systemd timer
(``deploy/systemd/cloud-retention.timer``). Exit codes are the CLI's: 0 done
(or nothing to do), 4 the catalog failed, 5 some objects could not be
deleted from the store (they stay catalogued and the next run retries).
"""

from __future__ import annotations

import argparse
import datetime as dt
from typing import Any

from ..config import CoordinatorConfig
from ..wiring import build_catalog, build_store
from .job import RetentionJob

__all__ = ["add_command", "run"]

# Exit codes shared with cloud_coordinator.cli (kept equal, not imported, to
# avoid importing the CLI module from a command it loads).
_EXIT_OK = 0
_EXIT_STORE = 5


def _iso_time(text: str) -> dt.datetime:
    try:
        value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not an ISO 8601 time") from exc
    if value.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r}: give a time zone (Z or +00:00)")
    return value.astimezone(dt.UTC)


def add_command(commands: Any) -> None:
    """Add the ``retention`` subcommand to ``commands``."""
    parser: argparse.ArgumentParser = commands.add_parser(
        "retention",
        help="announce and delete expired raw data (run daily)",
        description="Announce raw-data deletions to riders [retention] "
        "notice_days ahead (raw_deletion_scheduled notifications), then delete "
        "raw objects whose download window ([retention] raw_days after they "
        "were catalogued) has closed, unless their log had a crash or the "
        "rider is professional. Every deletion is written to the catalog's "
        "audit log; analytics and crash data are never deleted here. Uses "
        "[catalog], [store], [buckets] and [retention] (batch_size). Safe to "
        "run again: what is done is not found again.",
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="list what would be announced and deleted; change nothing",
    )
    parser.add_argument(
        "--now",
        type=_iso_time,
        default=None,
        help="run as if it were this time (ISO 8601 with zone; default: now)",
    )
    parser.add_argument(
        "--list", action="store_true", help="print one line per object as well"
    )
    parser.set_defaults(run=run)


def run(config: CoordinatorConfig, args: argparse.Namespace) -> int:
    """Run the job once; print the summary; return the exit code."""
    catalog = build_catalog(config)
    try:
        catalog.migrate()
        job = RetentionJob(
            catalog,
            build_store(config),
            notice_days=config.retention.notice_days,
            batch_size=config.retention.batch_size,
        )
        report = job.run(now=args.now, dry_run=args.dry_run)
    finally:
        catalog.close()
    if args.list:
        for item in report.notified:
            print(
                f"notice  {item.rider_id} {item.bucket}/{item.key} "
                f"deleted after {item.retention_until}"
            )
        for item in report.deleted:
            print(
                f"delete  {item.rider_id} {item.bucket}/{item.key} "
                f"({item.size_bytes} bytes)"
            )
        for object_id, reason in report.failed.items():
            print(f"failed  object {object_id}: {reason}")
    print(report.summary())
    return _EXIT_STORE if report.failed else _EXIT_OK
