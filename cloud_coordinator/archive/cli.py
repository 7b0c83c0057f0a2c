"""``cloud-coordinator upload-archive``: on-premise files to the cloud.

Exit codes (the CLI's, plus one): 0 every file stored and processed,
4 catalog failed, 5 object store failed (run again to resume), 6 some files
were rejected and quarantined (the others are done).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from edge_agent.ingest import (
    ACCEL_UNITS,
    FIELDS,
    GYRO_UNITS,
    MAG_UNITS,
    SPEED_UNITS,
    TIME_REFERENCES,
    TIME_UNITS,
    UnitOptions,
    parse_overrides,
)
from edge_agent.processing import CrashDetector
from edge_agent.service.progress import TerminalProgress

from ..config import CoordinatorConfig
from ..wiring import build_catalog, build_store
from .upload import upload_archive

__all__ = ["EXIT_REJECTED", "add_command", "run"]

_EXIT_OK = 0
_EXIT_USAGE = 2
# Some input files were quarantined; the others were stored and processed.
EXIT_REJECTED = 6


def add_command(commands: Any) -> None:
    """Add the ``upload-archive`` subcommand."""
    parser: argparse.ArgumentParser = commands.add_parser(
        "upload-archive",
        help="upload on-premise suit logs or CSV exports, then process them",
        description="Upload every file directly in DIR, unchanged, to the "
        "[buckets] archive bucket as {rider}/{suit}/{upload_id}/{file name} "
        "(resumable multipart; a second run skips what is stored), then run "
        "each through the gateway's pipeline: processed CSV to the raw bucket, "
        "analytics JSON to the analytics bucket (crash copies to the crash "
        "bucket), all catalogued and announced to the rider. Units are never "
        "guessed: a CSV whose header does not declare them needs --time-unit, "
        "--accel-unit and --gyro-unit. A file that cannot be processed is "
        "copied to [archive] state_dir/quarantine/{upload_id}/ with a "
        ".reason.txt, and the others go on. Uses [catalog], [store], [buckets] "
        "and [archive].",
        epilog="Exit codes: 0 all done, 4 catalog, 5 object store (run again to "
        "resume), 6 some files quarantined.",
    )
    parser.add_argument("--rider", required=True, help="rider id of the files")
    parser.add_argument("--suit", required=True, help="suit id of the files")
    parser.add_argument(
        "--upload-id",
        default=None,
        help="name of this upload in the archive (default: derived from the "
        "rider, suit and DIR, so running again resumes)",
    )
    parser.add_argument("--time-unit", choices=sorted(TIME_UNITS))
    parser.add_argument("--accel-unit", choices=sorted(ACCEL_UNITS))
    parser.add_argument("--gyro-unit", choices=sorted(GYRO_UNITS))
    parser.add_argument("--mag-unit", choices=sorted(MAG_UNITS))
    parser.add_argument("--speed-unit", choices=sorted(SPEED_UNITS))
    parser.add_argument(
        "--time-reference",
        choices=list(TIME_REFERENCES),
        default="relative",
        help="what numeric CSV times count from (default: relative)",
    )
    parser.add_argument(
        "--column",
        action="append",
        default=[],
        metavar="FIELD=HEADER",
        help=f"map a field to a CSV header; fields: {', '.join(FIELDS)}",
    )
    parser.add_argument(
        "--reprocess",
        action="store_true",
        help="process every file again, even one processed before with the same "
        "bytes, software and crash model (skipped by default)",
    )
    parser.add_argument(
        "--no-progress", action="store_true", help="no progress bars on stderr"
    )
    parser.add_argument("folder", type=Path, metavar="DIR")
    parser.set_defaults(run=run)


def run(config: CoordinatorConfig, args: argparse.Namespace) -> int:
    """Upload and process the folder; print a line per file; return the code."""
    try:
        columns = parse_overrides(args.column, known=FIELDS) or None
        units = UnitOptions(
            time_unit=args.time_unit,
            accel_unit=args.accel_unit,
            gyro_unit=args.gyro_unit,
            mag_unit=args.mag_unit,
            speed_unit=args.speed_unit,
            time_reference=args.time_reference,
        )
    except ValueError as exc:
        print(f"cloud-coordinator upload-archive: {exc}", file=sys.stderr)
        return _EXIT_USAGE
    if not args.folder.is_dir():
        print(
            f"cloud-coordinator upload-archive: {args.folder} is not a folder",
            file=sys.stderr,
        )
        return _EXIT_USAGE
    state_dir = config.path(config.archive.state_dir)
    assert state_dir is not None
    catalog = build_catalog(config)
    try:
        catalog.migrate()
        report = upload_archive(
            args.folder,
            args.rider,
            args.suit,
            catalog=catalog,
            store=build_store(config),
            buckets=config.buckets,
            state_dir=state_dir,
            detector=CrashDetector.shipped(),
            upload_id=args.upload_id,
            units=units,
            columns=columns,
            progress=TerminalProgress(False if args.no_progress else None),
            reprocess=args.reprocess,
        )
    finally:
        catalog.close()

    print(f"upload {report.upload_id}: {len(report.uploaded)} files in the archive")
    for name, outcome in report.processed.items():
        crash = {True: "crash", False: "no crash", None: "crash unknown"}
        objects = ", ".join(
            f"{item.bucket}/{item.key}" for item in outcome.objects.values()
        )
        print(
            f"  {name} -> log {outcome.log_id}: {outcome.samples} samples, "
            f"{crash[outcome.crash_detected]}; {objects}"
        )
    for name, log_id in report.already_processed.items():
        print(
            f"  {name} -> log {log_id}: processed before (same file, software and "
            "model; --reprocess to run it again)"
        )
    for name, reason in report.quarantined.items():
        print(f"rejected {name}: {reason}")
    if report.quarantined:
        print(
            f"{len(report.quarantined)} files quarantined in "
            f"{state_dir / 'quarantine' / report.upload_id}"
        )
    return _EXIT_OK if report.ok else EXIT_REJECTED
