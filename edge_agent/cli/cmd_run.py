"""``edge-agent run``: the service loop."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
from pathlib import Path
from typing import Any

from edge_agent.config import load_config
from edge_agent.service.agent import EdgeAgent
from edge_agent.service.dock import BleBackends
from edge_agent.service.runtime import open_runtime

from .exit_codes import ExitCode

__all__ = ["add_parser"]

_LOGGER = logging.getLogger(__name__)


def add_parser(commands: Any) -> argparse.ArgumentParser:
    """Register the subcommand."""
    parser: argparse.ArgumentParser = commands.add_parser(
        "run", help="run the gateway service until SIGTERM"
    )
    parser.add_argument("--config", type=Path, required=True, help="TOML file")
    parser.add_argument(
        "--once", action="store_true", help="run one cycle and exit (for scripts)"
    )
    parser.set_defaults(run=run)
    return parser


async def _async_main(args: argparse.Namespace) -> ExitCode:
    config = load_config(args.config)
    radio: Any = None
    backends = BleBackends()
    if config.ble.backend == "emulated":
        from firmware_bridge.ble.bleak_bumble import GatewayRadio

        radio = await GatewayRadio.async_open_hci(config.ble.hci_transport)
        backends = BleBackends(radio.scanner_backend, radio.client_backend)
    runtime = open_runtime(config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        agent = EdgeAgent(runtime, backends)
        _LOGGER.info("gateway %s: agent started", config.gateway_id)
        if args.once:
            report = await agent.async_cycle()
            return ExitCode.BAD_INPUT if report.quarantined else ExitCode.OK
        await agent.async_run(stop)
        _LOGGER.info("gateway %s: stopping on signal", config.gateway_id)
        return ExitCode.OK
    finally:
        runtime.close()
        if radio is not None:
            await radio.async_close()


def run(args: argparse.Namespace) -> ExitCode:
    """Run the service."""
    return asyncio.run(_async_main(args))
