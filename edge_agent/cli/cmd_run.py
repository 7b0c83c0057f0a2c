"""``edge-agent run``: the service loop, under systemd or in a terminal.

Start-up opens the BLE radio, the custody buffer, the object store and the
crash model, starts the metrics endpoint if configured, then tells systemd
``READY=1``. The watchdog pinger runs as a task on the same event loop as
the cycles (design in :mod:`edge_agent.service.systemd`). SIGTERM or SIGINT
sends ``STOPPING=1``, lets the current step finish (a BLE pull stops at its
durable offset) and exits 0; every log is resumable by the next run.
SIGHUP (``systemctl reload``) rereads the file and applies suit pairings
and gating rules at once; other changes wait for a restart.
``faulthandler`` is on, so the SIGABRT systemd sends when the watchdog
fires leaves the traceback of every thread in the journal.
"""

from __future__ import annotations

import argparse
import asyncio
import faulthandler
import logging
import os
import signal
from pathlib import Path
from typing import Any

from edge_agent.config import ConfigError, GatewayConfig, load_config
from edge_agent.service.agent import TEST_HANG_ENV, EdgeAgent
from edge_agent.service.dock import BleBackends
from edge_agent.service.metrics import AgentMetrics
from edge_agent.service.runtime import AgentRuntime, open_runtime
from edge_agent.service.systemd import Liveness, SystemdNotifier, async_run_watchdog
from edge_agent.transfer import AdapterBusyError, AdapterLock

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


def _start_metrics(config: GatewayConfig, runtime: AgentRuntime) -> AgentMetrics | None:
    if not config.metrics.port:
        return None
    metrics = AgentMetrics()
    try:
        metrics.serve(config.metrics.port)
    except OSError as exc:
        # Metrics are for the operator; custody work goes on without them.
        _LOGGER.error(
            "gateway %s: metrics port %d on 127.0.0.1 unusable (%s); "
            "running without metrics: free the port or change [metrics] port",
            config.gateway_id,
            config.metrics.port,
            exc,
        )
        return None
    metrics.record_buffer(runtime.buffer)
    return metrics


async def _async_main(args: argparse.Namespace) -> ExitCode:
    config = load_config(args.config)
    who = f"gateway {config.gateway_id}"
    notifier = SystemdNotifier.from_environment()
    liveness = Liveness(config.service.step_stall_s)
    stop = asyncio.Event()
    radio: Any = None
    backends = BleBackends()
    emulated = config.ble.backend == "emulated"
    lock = AdapterLock(
        config.ble.hci_transport if emulated else config.ble.adapter,
        fallback_dir=config.workdir / "run",
    )
    try:
        lock.acquire()
    except AdapterBusyError as exc:
        _LOGGER.error("%s: %s", who, exc)
        return ExitCode.ADAPTER_BUSY
    if emulated:
        from firmware_bridge.ble.bleak_bumble import GatewayRadio

        radio = await GatewayRadio.async_open_hci(config.ble.hci_transport)
        backends = BleBackends(radio.scanner_backend, radio.client_backend)
    runtime: AgentRuntime | None = None
    metrics: AgentMetrics | None = None
    agent: EdgeAgent | None = None
    watchdog: asyncio.Task[None] | None = None

    def on_signal(name: str) -> None:
        if stop.is_set():
            return
        step = liveness.step or "none (idle)"
        _LOGGER.info("%s: %s received; finishing step %s", who, name, step)
        notifier.stopping(f"stopping on {name}: finishing step {step}")
        stop.set()

    def on_reload() -> None:
        if agent is None:
            return
        try:
            config = load_config(args.config)
        except ConfigError as exc:
            _LOGGER.error("%s: reload refused, configuration unchanged: %s", who, exc)
            return
        agent.reload(config)
        notifier.status(f"{who}: configuration reloaded")

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal, sig.name)
    loop.add_signal_handler(signal.SIGHUP, on_reload)
    try:
        runtime = open_runtime(config, on_upload_part=lambda *_: liveness.beat())
        metrics = _start_metrics(config, runtime)
        agent = EdgeAgent(
            runtime,
            backends,
            liveness=liveness,
            metrics=metrics,
            notifier=notifier,
            test_hang=os.environ.get(TEST_HANG_ENV) or None,
        )
        mqtt = runtime.mqtt
        if mqtt is not None:
            status_of = agent.status_info
            agent.cycle_listeners.append(lambda _: mqtt.update_status(status_of()))
        models = runtime.models
        if models is not None:
            # Report each model update at once (a canary roll-out waits on it).
            if mqtt is not None:
                models.on_status = lambda: mqtt.update_status(agent.status_info())
            models.start()
        watchdog = asyncio.create_task(async_run_watchdog(notifier, liveness, stop))
        _LOGGER.info("%s: agent started", who)
        notifier.ready(f"{who}: started")
        if args.once:
            report = await agent.async_cycle(stop)
            return ExitCode.BAD_INPUT if report.quarantined else ExitCode.OK
        await agent.async_run(stop)
        _LOGGER.info("%s: stopped on signal; every log is resumable", who)
        return ExitCode.OK
    finally:
        if not stop.is_set():
            notifier.stopping(f"{who}: stopping")
            stop.set()
        if watchdog is not None:
            await watchdog
        if agent is not None:
            agent.write_state("stopped", force=True)
        if metrics is not None:
            metrics.close()
        if runtime is not None:
            runtime.close()
        if radio is not None:
            await radio.async_close()
        lock.release()
        notifier.close()


def run(args: argparse.Namespace) -> ExitCode:
    """Run the service."""
    faulthandler.enable()
    return asyncio.run(_async_main(args))
