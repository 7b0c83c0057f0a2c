"""``firmware-bridge emulate``: an emulated suit serving log files over BLE.

The suit is a bumble GATT server on an in-process link. With ``--hci-port``
a second controller on that link is served over HCI on 127.0.0.1, so an
agent in another process (``[ble] backend = "emulated"`` with
``hci_transport = "tcp-client:127.0.0.1:PORT"``) can scan for it and pull.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from pathlib import Path
from typing import Any, TextIO

__all__ = ["register_emulate"]


def register_emulate(sub: Any) -> None:
    """Add the ``emulate`` subcommand."""
    parser = sub.add_parser(
        "emulate",
        help="run an emulated suit holding log files",
        description="Advertise an emulated suit (bumble GATT server) holding the "
        "given logs until interrupted.",
    )
    parser.add_argument("logs", nargs="+", type=Path, metavar="LOG_OR_DIR")
    parser.add_argument("--serial", default="SUIT-EMU-01", help="suit serial")
    parser.add_argument("--battery-pct", type=int, default=80)
    parser.add_argument(
        "--not-charging", action="store_true", help="report the suit as not charging"
    )
    parser.add_argument(
        "--hci-port",
        type=int,
        default=0,
        help="serve the gateway's controller over HCI on this loopback port "
        "(0 picks a free one)",
    )
    parser.set_defaults(handler=_run_emulate)


def _run_emulate(args: argparse.Namespace, out: TextIO) -> int:
    from firmware_bridge.ble.suit import async_run_emulated_suit

    missing = [str(p) for p in args.logs if not p.exists()]
    if missing:
        from firmware_bridge.cli import InputFileError

        raise InputFileError(f"no such log file or folder: {', '.join(missing)}")

    async def _async_main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)

        def ready(suit: Any, endpoint: Any) -> None:
            print(f"suit {suit.serial}: advertising", file=out)
            if endpoint is not None:
                print(
                    f"gateway HCI transport: tcp-client:127.0.0.1:{endpoint.port}",
                    file=out,
                    flush=True,
                )

        await async_run_emulated_suit(
            args.logs,
            args.serial,
            battery_pct=args.battery_pct,
            charging=not args.not_charging,
            hci_tcp_port=args.hci_port,
            stop=stop,
            on_ready=ready,
        )

    asyncio.run(_async_main())
    return 0
