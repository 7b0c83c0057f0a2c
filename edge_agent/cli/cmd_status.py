"""``edge-agent status``: buffer, disk budget, gates, model, last sync, errors.

Two sources, shown side by side: the custody buffer (opened read-only, so
it works while the service runs) with the gating conditions read now
(power supply, a bounded uplink probe), and the state file the agent
writes after each cycle (what it held back and why, its model, its last
error). Whether a suit charges is only known to the agent, from its last
dock.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
from pathlib import Path
from typing import Any

from edge_agent.config import GatewayConfig, load_config
from edge_agent.custody import CustodyBuffer, LogState
from edge_agent.service.gating import async_read_conditions
from edge_agent.service.runtime import BUFFER_DIR
from edge_agent.service.state import STATE_FILE, read_agent_state

from .exit_codes import ExitCode

__all__ = ["add_parser", "collect_status"]


def add_parser(commands: Any) -> argparse.ArgumentParser:
    """Register the subcommand."""
    from .main import workdir_argument

    parser: argparse.ArgumentParser = commands.add_parser(
        "status",
        help="show the custody buffer, disk budget, gates, model, last sync "
        "and last error",
    )
    workdir_argument(parser, required=False)
    parser.add_argument("--config", type=Path, help="gateway configuration (TOML)")
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.add_argument(
        "--no-probe", action="store_true", help="do not probe the uplink now"
    )
    parser.set_defaults(run=run)
    return parser


def _pid_alive(pid: Any) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _buffer_status(root: Path) -> dict[str, Any]:
    with CustodyBuffer.open(root, read_only=True) as buffer:
        counts = buffer.counts_by_state()
        last = buffer.last_upload_time()
        quarantined = buffer.quarantine_entries()
        space = buffer.space_status() if hasattr(buffer, "space_status") else None
        used = buffer.disk_usage_bytes() if space is None else space.used_bytes
    disk: dict[str, Any] = {"used_bytes": used, "budget_bytes": None}
    if space is not None:
        disk.update(
            budget_bytes=space.budget_bytes,
            reserved_bytes=space.reserved_bytes,
            evictable_bytes=space.evictable_bytes,
            free_bytes=space.free_bytes,
            intake_refused=space.refusal,
        )
    return {
        "logs": {state.value: counts.get(state, 0) for state in LogState},
        "quarantined_items": len(quarantined),
        "disk": disk,
        "last_sync_utc": None if last is None else last.isoformat(),
    }


def collect_status(config: GatewayConfig, *, probe: bool = True) -> dict[str, Any]:
    """Return the status document of the gateway in ``config``.

    Args:
        config: the gateway configuration.
        probe: read power and probe the uplink now (bounded by
            ``[gating] uplink_timeout_s``).
    """
    root = config.workdir / BUFFER_DIR
    status: dict[str, Any] = {"gateway_id": config.gateway_id, "buffer": str(root)}
    if (root / "custody.db").exists():
        status.update(_buffer_status(root))
    else:
        status["logs"] = {}

    # Gates now, and what the agent held back at its last cycle.
    if probe:
        conditions = asyncio.run(async_read_conditions(config))
        gate = conditions.upload_gate(config.gating)
        status["conditions"] = conditions.as_dict()
        status["upload_gate"] = {"allowed": gate.allowed, "reason": gate.reason}
    try:
        agent = read_agent_state(config.workdir)
    except ValueError as exc:
        agent = None
        status["agent_state_error"] = str(exc)
    if agent is not None:
        running = agent.get("activity") != "stopped" and _pid_alive(agent.get("pid"))
        status["agent"] = {
            "running": running,
            "activity": agent.get("activity"),
            "pid": agent.get("pid"),
            "updated_utc": agent.get("updated_utc"),
            "last_cycle_utc": agent.get("last_cycle_utc"),
            "state_file": str(config.workdir / STATE_FILE),
        }
        status["held_back"] = agent.get("held_back", {})
        status["last_error"] = agent.get("last_error")

    # The model the agent runs; the shipped one when no agent has run.
    model = None if agent is None else agent.get("model")
    if model is None:
        from models.registry import shipped_model

        meta = shipped_model().metadata
        model = {"name": meta.name, "version": meta.version, "source": "shipped"}
    status["model"] = model
    return status


def _print_text(status: dict[str, Any]) -> None:
    print(f"gateway {status['gateway_id']}, buffer {status['buffer']}")
    for state, count in status["logs"].items():
        print(f"  {state:<12} {count}")
    disk = status.get("disk")
    if disk is not None:
        budget = disk["budget_bytes"]
        limit = "no budget" if budget is None else f"budget {budget / 1e6:.1f} MB"
        print(f"  disk use     {disk['used_bytes'] / 1e6:.1f} MB ({limit})")
        if disk.get("intake_refused"):
            print(f"  intake       refused: {disk['intake_refused']}")
        print(f"  quarantined  {status['quarantined_items']} items")
        print(f"  last sync    {status['last_sync_utc'] or 'never'}")
    model = status["model"]
    print(f"  model        {model['name']} {model['version']}")
    conditions = status.get("conditions")
    if conditions is not None:
        power = "external" if conditions["external_power"] else "battery"
        print(f"  power        {power} ({conditions['power_detail']})")
        uplink = "up" if conditions["uplink_up"] else "down"
        print(f"  uplink       {uplink} ({conditions['uplink_detail']})")
        gate = status["upload_gate"]
        print(f"  uploads      {'allowed' if gate['allowed'] else gate['reason']}")
    agent = status.get("agent")
    if agent is None:
        print("  agent        no state file (the agent has not run here)")
        return
    state = "running" if agent["running"] else "not running"
    print(f"  agent        {state}, {agent['activity']}, as of {agent['updated_utc']}")
    for work, reason in status["held_back"].items():
        print(f"  held back    {work}: {reason}")
    error = status["last_error"]
    if error:
        print(f"  last error   {error['time_utc']}: {error['message']}")


def run(args: argparse.Namespace) -> ExitCode:
    """Print the status."""
    if args.config is not None:
        config = load_config(args.config)
    elif args.workdir is not None:
        config = GatewayConfig(gateway_id="local", workdir=args.workdir)
    else:
        raise SystemExit("edge-agent status: give --workdir DIR or --config FILE")
    status = collect_status(config, probe=not args.no_probe)
    if args.json:
        print(json.dumps(status, indent=2))
    else:
        _print_text(status)
    return ExitCode.OK
