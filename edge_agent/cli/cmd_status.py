"""``edge-agent status``: buffer by state, disk use, model, last sync."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from edge_agent.config import GatewayConfig, load_config
from edge_agent.custody import CustodyBuffer, LogState
from edge_agent.service.runtime import BUFFER_DIR

from .exit_codes import ExitCode

__all__ = ["add_parser", "collect_status"]


def add_parser(commands: Any) -> argparse.ArgumentParser:
    """Register the subcommand."""
    from .main import workdir_argument

    parser: argparse.ArgumentParser = commands.add_parser(
        "status", help="show the custody buffer, disk use, model and last sync"
    )
    workdir_argument(parser, required=False)
    parser.add_argument("--config", type=Path, help="gateway configuration (TOML)")
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.set_defaults(run=run)
    return parser


def collect_status(config: GatewayConfig) -> dict[str, Any]:
    """Return the status document of the gateway in ``config``."""
    root = config.workdir / BUFFER_DIR
    if not (root / "custody.db").exists():
        return {"gateway_id": config.gateway_id, "buffer": str(root), "logs": {}}
    with CustodyBuffer.open(root, read_only=True) as buffer:
        counts = buffer.counts_by_state()
        last = buffer.last_upload_time()
        quarantined = buffer.quarantine_entries()
        disk = buffer.disk_usage_bytes()
    from models.registry import shipped_model

    model = shipped_model().metadata
    return {
        "gateway_id": config.gateway_id,
        "buffer": str(root),
        "logs": {state.value: counts.get(state, 0) for state in LogState},
        "quarantined_items": len(quarantined),
        "disk_use_bytes": disk,
        "model": {"name": model.name, "version": model.version},
        "last_sync_utc": None if last is None else last.isoformat(),
    }


def run(args: argparse.Namespace) -> ExitCode:
    """Print the status."""
    if args.config is not None:
        config = load_config(args.config)
    elif args.workdir is not None:
        config = GatewayConfig(gateway_id="local", workdir=args.workdir)
    else:
        raise SystemExit("edge-agent status: give --workdir DIR or --config FILE")
    status = collect_status(config)
    if args.json:
        print(json.dumps(status, indent=2))
        return ExitCode.OK
    print(f"gateway {status['gateway_id']}, buffer {status['buffer']}")
    for state, count in status["logs"].items():
        print(f"  {state:<12} {count}")
    if "disk_use_bytes" in status:
        print(f"  disk use     {status['disk_use_bytes'] / 1e6:.1f} MB")
        print(f"  quarantined  {status['quarantined_items']} items")
        print(f"  model        {status['model']['name']} {status['model']['version']}")
        print(f"  last sync    {status['last_sync_utc'] or 'never'}")
    return ExitCode.OK
