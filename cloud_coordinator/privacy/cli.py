"""``cloud-coordinator privacy export|erase``: a rider's data rights, for operators.

``export`` writes the same tar the API streams (``rider-export/1``) to a
file; ``erase`` deletes the rider's raw, analytics, crash and archive data
and records and prints what went. Both are audited with the operator's
name (``--operator``, default the login name).
"""

from __future__ import annotations

import argparse
import datetime as dt
import getpass
import json
import os
import sys
from pathlib import Path
from typing import Any

from ..config import CoordinatorConfig
from ..wiring import build_catalog, build_store
from .erase import erase_rider
from .export import iter_export, plan_export, write_export

__all__ = ["add_command", "run"]

_EXIT_OK = 0
_EXIT_USAGE = 2


def add_command(commands: Any) -> None:
    """Add the ``privacy`` subcommand (``export`` and ``erase``)."""
    parser: argparse.ArgumentParser = commands.add_parser(
        "privacy",
        help="export or erase all data of a rider (data-protection requests)",
        description="Serve a rider's data-protection request. `export` writes a "
        "tar of manifest.json (registry record, catalog rows, crash verdicts, "
        "audit) and objects/{bucket}/{key} (every stored object under the "
        "rider's prefix in the [buckets] raw, analytics, crash and archive "
        "buckets). `erase` deletes all of it and the rider's records; the "
        "audit log keeps a line per deletion. Uses [catalog], [store] and "
        "[buckets].",
    )
    actions = parser.add_subparsers(dest="privacy_action", required=True)
    export = actions.add_parser("export", help="write a rider's data to a tar file")
    export.add_argument("--rider", required=True, help="rider id")
    export.add_argument(
        "--out", required=True, type=Path, help="tar file to write (not overwritten)"
    )
    erase = actions.add_parser("erase", help="erase a rider's data (irreversible)")
    erase.add_argument("--rider", required=True, help="rider id")
    erase.add_argument(
        "--confirm",
        required=True,
        metavar="RIDER_ID",
        help="the rider id again, to confirm the erasure",
    )
    for action in (export, erase):
        action.add_argument(
            "--operator",
            default=None,
            help="name recorded in the audit log (default: login name)",
        )
    parser.set_defaults(run=run)


def _operator(args: argparse.Namespace) -> str:
    name = args.operator or os.environ.get("USER") or getpass.getuser()
    return f"operator:{name}"


def run(config: CoordinatorConfig, args: argparse.Namespace) -> int:
    """Run ``export`` or ``erase``; return the exit code."""
    if args.privacy_action == "erase" and args.confirm != args.rider:
        print(
            f"cloud-coordinator privacy erase: --confirm {args.confirm!r} is not "
            f"--rider {args.rider!r}; nothing erased",
            file=sys.stderr,
        )
        return _EXIT_USAGE
    if args.privacy_action == "export" and args.out.exists():
        print(
            f"cloud-coordinator privacy export: {args.out} exists; choose another "
            "--out",
            file=sys.stderr,
        )
        return _EXIT_USAGE
    catalog = build_catalog(config)
    store = build_store(config)
    try:
        catalog.migrate()
        if args.privacy_action == "erase":
            report = erase_rider(
                catalog, store, config.buckets, args.rider, actor=_operator(args)
            )
            print(json.dumps(report.as_dict(), indent=1, sort_keys=True))
            return _EXIT_OK
        plan = plan_export(
            catalog, store, config.buckets, args.rider, now=dt.datetime.now(dt.UTC)
        )
        partial = args.out.with_name(args.out.name + ".partial")
        with open(partial, "wb") as target:
            size_bytes = write_export(
                iter_export(
                    catalog,
                    store,
                    plan,
                    actor=_operator(args),
                    scratch_dir=args.out.parent,
                ),
                target,
            )
        partial.replace(args.out)
    finally:
        catalog.close()
    print(f"{args.out}: {len(plan.files)} files, {size_bytes} bytes")
    return _EXIT_OK
