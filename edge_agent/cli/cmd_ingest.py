"""``edge-agent ingest``: import archived files through the gateway pipeline.

Each file enters the custody buffer as ``pulled`` (a copy; the operator's
file is never touched), is processed with the same code as a pulled log,
uploaded to the local store under ``--workdir`` (or the configured store)
and released. A bad file is quarantined with its reason and the others go
on; the exit code then says some input was rejected.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from edge_agent.config import GatewayConfig, StoreConfig, SuitIdentity, load_config
from edge_agent.custody import LogConflictError, LogState
from edge_agent.ingest import (
    ACCEL_UNITS,
    FIELDS,
    GYRO_UNITS,
    TIME_UNITS,
    UnitOptions,
    parse_overrides,
)
from edge_agent.service.progress import TerminalProgress
from edge_agent.service.runtime import open_runtime
from edge_agent.service.steps import (
    StepReport,
    process_pending,
    purge_released,
    release_imported,
    upload_pending,
    write_import_options,
)
from edge_agent.upload.errors import InvalidObjectKey
from edge_agent.upload.layout import check_key_segment
from firmware_bridge.logformat import LogFormatError, LogReader

from .exit_codes import ExitCode
from .summary import RIDE_COLUMNS, format_table, ride_row

__all__ = ["add_parser", "import_log_id"]


def add_parser(commands: Any) -> argparse.ArgumentParser:
    """Register the subcommand."""
    from .main import workdir_argument

    parser: argparse.ArgumentParser = commands.add_parser(
        "ingest",
        help="import archived suit logs or CSV exports",
        description="Import archived on-premise files (suit logs or CSV exports) "
        "through the same pipeline as pulled logs. Units are never guessed: a CSV "
        "whose header does not declare them needs --time-unit, --accel-unit and "
        "--gyro-unit.",
    )
    workdir_argument(parser, required=False)
    parser.add_argument("--config", type=Path, help="gateway configuration (TOML)")
    parser.add_argument(
        "--rider", required=True, type=_key_id("rider_id"), help="rider id of the files"
    )
    parser.add_argument(
        "--suit", required=True, type=_key_id("suit_id"), help="suit id of the files"
    )
    parser.add_argument("--time-unit", choices=sorted(TIME_UNITS))
    parser.add_argument("--accel-unit", choices=sorted(ACCEL_UNITS))
    parser.add_argument("--gyro-unit", choices=sorted(GYRO_UNITS))
    parser.add_argument(
        "--column",
        action="append",
        default=[],
        metavar="FIELD=HEADER",
        help=f"map a field to a CSV header; fields: {', '.join(FIELDS)}",
    )
    parser.add_argument("files", nargs="+", type=Path, metavar="FILE")
    parser.set_defaults(run=run)
    return parser


def import_log_id(path: Path) -> str:
    """Return the log id of an archived file: its header's, else from its bytes.

    A suit log keeps the id the suit gave it; any other file gets the first
    32 hex digits of its SHA-256, so importing it twice is idempotent.
    """
    try:
        with open(path, "rb") as stream:
            return LogReader(stream, str(path)).header.log_id
    except (LogFormatError, OSError):
        pass
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:32]


def _key_id(field_name: str) -> Callable[[str], str]:
    """Return an argparse type that refuses ids no object key can hold."""

    def check(value: str) -> str:
        try:
            return check_key_segment(field_name, value)
        except InvalidObjectKey as exc:
            raise argparse.ArgumentTypeError(str(exc)) from exc

    return check


def _config(args: argparse.Namespace) -> GatewayConfig:
    if args.config is not None:
        config = load_config(args.config)
    elif args.workdir is not None:
        config = GatewayConfig(
            gateway_id="ingest", workdir=args.workdir, store=StoreConfig()
        )
    else:
        raise SystemExit("edge-agent ingest: give --workdir DIR or --config FILE")
    suits = dict(config.suits)
    suits.setdefault(args.suit, SuitIdentity(args.suit, args.rider))
    return GatewayConfig(**{**config.__dict__, "suits": suits})


def run(args: argparse.Namespace) -> ExitCode:
    """Import the files and print a summary per file."""
    config = _config(args)
    units = UnitOptions(
        time_unit=args.time_unit, accel_unit=args.accel_unit, gyro_unit=args.gyro_unit
    )
    try:
        columns = parse_overrides(args.column, known=FIELDS)
    except ValueError as exc:
        print(f"edge-agent ingest: {exc}", file=sys.stderr)
        return ExitCode.USAGE
    runtime = open_runtime(config)
    report = StepReport()
    imported: dict[str, Path] = {}
    copies: dict[str, str] = {}  # buffer copy -> the operator's file
    try:
        buffer = runtime.buffer
        for path in args.files:
            if not path.is_file():
                report.quarantined[str(path)] = f"{path}: no such file"
                continue
            log_id = import_log_id(path)
            try:
                record = buffer.register_imported(
                    path, args.suit, log_id, rider_id=args.rider
                )
            except LogConflictError as exc:
                report.quarantined[str(path)] = str(exc)
                continue
            if (record.rider_id not in (None, args.rider)) or (
                record.suit_serial != args.suit
            ):
                report.quarantined[str(path)] = (
                    f"imported before as log {log_id} of rider {record.rider_id}, "
                    f"suit {record.suit_serial}; a log belongs to one rider and "
                    "suit, so it stays theirs"
                )
                continue
            if record.raw_path is not None:
                copies[str(record.raw_path)] = str(path)
            if record.state is LogState.QUARANTINED:
                # Pulled from a suit and refused then (a refused import is
                # taken again instead): the same bytes stay refused.
                report.quarantined[log_id] = (
                    f"refused before (kept in {record.quarantine_path}): {record.error}"
                )
            write_import_options(buffer.output_dir(log_id), units, columns)
            imported[log_id] = path
        progress = TerminalProgress()
        report.merge(process_pending(runtime, progress))
        report.merge(upload_pending(runtime, progress))
        report.merge(release_imported(runtime))
        report.merge(purge_released(runtime))
        records = {log_id: buffer.find(log_id) for log_id in imported}
    finally:
        runtime.close()

    rows = []
    for log_id, path in imported.items():
        found = records[log_id]
        if found is None or found.analytics is None:
            continue
        rows.append(ride_row(log_id, found.analytics))
        print(f"{path} -> {log_id}")
        for name, key in sorted(found.object_keys.items()):
            print(f"  {name:<14} {config.store_root / key}")
    if rows:
        print()
        print(format_table(RIDE_COLUMNS, rows))
    for what, reason in report.quarantined.items():
        source = imported.get(what, what)
        # Errors name the file they read, the buffer's copy: show the original.
        for copy, original in copies.items():
            reason = reason.replace(copy, original)
        named = reason if reason.startswith(f"{source}: ") else f"{source}: {reason}"
        print(f"rejected {named}")
    return ExitCode.BAD_INPUT if report.quarantined else ExitCode.OK
