"""``edge-agent demo``: the main job on the embedded default, with a summary."""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from edge_agent.custody import LogState
from edge_agent.service.demo import async_run_demo
from edge_agent.service.progress import TerminalProgress

from .exit_codes import ExitCode
from .summary import RIDE_COLUMNS, format_table, ride_row

__all__ = ["add_parser"]


def add_parser(commands: Any) -> argparse.ArgumentParser:
    """Register the subcommand."""
    from .main import workdir_argument

    parser: argparse.ArgumentParser = commands.add_parser(
        "demo",
        help="emulated suit docks; its logs are pulled, processed and uploaded",
        description="Dock an emulated suit holding two synthesised rides (one "
        "with a crash), pull them over the emulated BLE link through bleak, "
        "process them and upload into a local store under --workdir.",
    )
    workdir_argument(parser, required=True)
    parser.set_defaults(run=run)
    return parser


def run(args: argparse.Namespace) -> ExitCode:
    """Run the demo and print what happened to each log."""
    print("edge-agent demo: synthesising rides, docking the emulated suit ...")
    result = asyncio.run(async_run_demo(args.workdir, TerminalProgress()))

    dock = result.cycle.dock
    print(
        "Paired with the suit (LE Secure Connections, bonded); "
        f"{len(result.receipted_on_suit)} releases carried an upload receipt."
    )
    print(
        f"Pulled {len(dock.pulled)} logs ({dock.bytes_pulled / 1e6:.1f} MB) over the "
        f"emulated BLE link; {dock.bytes_resent} bytes sent twice."
    )
    rows, truth_rows = [], []
    for record in result.records:
        rows.append(ride_row(record.log_id, record.analytics or {}))
        truth_rows.append(ride_row(record.log_id, result.truths[record.log_id]))
    print("\nRide analytics (computed on the gateway):")
    print(format_table(RIDE_COLUMNS, rows))
    print("\nSynthesiser truth for the same rides:")
    print(format_table(RIDE_COLUMNS, truth_rows))

    print("\nCustody:")
    for record in result.records:
        erased = "erased" if record.log_id in result.erased_on_suit else "kept"
        print(f"  {record.log_id}: {record.state.value}; on the suit: {erased}")
        for name, key in sorted(record.object_keys.items()):
            print(f"    {name:<14} {result.store_root / key}")
    if result.cycle.quarantined:
        print("\nQuarantined:")
        for log_id, reason in result.cycle.quarantined.items():
            print(f"  {log_id}: {reason}")
    print(f"\nStore: {result.store_root}")
    print(f"Buffer: {result.workdir / 'buffer'}")

    done = all(
        r.state in (LogState.RELEASED, LogState.PURGED) for r in result.records
    ) and len(result.erased_on_suit) == len(result.records)
    return ExitCode.OK if done else ExitCode.INTERNAL_ERROR
