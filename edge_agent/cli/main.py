"""Argument parsing and dispatch for ``edge-agent``.

Each subcommand lives in its own module and returns an :class:`ExitCode`.
Errors the operator can act on are caught here once and turned into a
message and an exit code; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from edge_agent.config import ConfigError
from edge_agent.custody import CustodyError
from edge_agent.processing import CrashModelError
from edge_agent.upload import StorageError

from . import cmd_demo, cmd_enrol, cmd_ingest, cmd_pair, cmd_run, cmd_status
from .exit_codes import ExitCode, epilog

__all__ = ["build_parser", "main"]

Command = Callable[[argparse.Namespace], ExitCode]


def _configure_logging(verbosity: int, service: bool) -> None:
    # The service logs INFO for journald (which adds time and unit); the
    # interactive commands print for people and log only warnings unless -v.
    level = logging.INFO if service else logging.WARNING
    if verbosity >= 2:
        level = logging.DEBUG
    elif verbosity == 1:
        level = logging.INFO
    fmt = "%(levelname)s %(name)s: %(message)s"
    if not service:
        fmt = "%(asctime)s " + fmt
    logging.basicConfig(level=level, format=fmt, stream=sys.stderr)
    # bumble and botocore are chatty at INFO; their warnings still show.
    for noisy in ("bumble", "botocore", "urllib3", "s3transfer"):
        logging.getLogger(noisy).setLevel(max(level, logging.WARNING))


def build_parser() -> argparse.ArgumentParser:
    """Return the parser of every subcommand."""
    parser = argparse.ArgumentParser(
        prog="edge-agent",
        description="Suit gateway agent: pull ride logs over BLE, keep custody, "
        "process, detect crashes, upload.",
        epilog=epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "-v", "--verbose", action="count", default=0, help="more log output"
    )
    commands = parser.add_subparsers(dest="command", required=True)
    for module in (cmd_run, cmd_demo, cmd_ingest, cmd_status, cmd_enrol, cmd_pair):
        sub = module.add_parser(commands)
        sub.epilog = epilog()
        sub.formatter_class = argparse.RawDescriptionHelpFormatter
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``edge-agent`` and return its exit code."""
    # LiteRT's C++ runtime prints an INFO line per interpreter unless told not to.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    _configure_logging(args.verbose, service=args.command == "run")
    run: Command = args.run
    try:
        return int(run(args))
    except ConfigError as exc:
        print(f"edge-agent: configuration error: {exc}", file=sys.stderr)
        return ExitCode.CONFIG_ERROR
    except CrashModelError as exc:
        print(f"edge-agent: crash model unusable: {exc}", file=sys.stderr)
        return ExitCode.MODEL_ERROR
    except StorageError as exc:
        print(f"edge-agent: object store: {exc}", file=sys.stderr)
        return ExitCode.STORE_UNAVAILABLE
    except CustodyError as exc:
        print(f"edge-agent: custody buffer: {exc}", file=sys.stderr)
        return ExitCode.INTERNAL_ERROR
    except KeyboardInterrupt:
        print("edge-agent: interrupted; every log is resumable", file=sys.stderr)
        return ExitCode.INTERRUPTED


def workdir_argument(parser: argparse.ArgumentParser, *, required: bool) -> None:
    """Add ``--workdir DIR`` (buffer in DIR/buffer, local store in DIR/store)."""
    parser.add_argument(
        "--workdir",
        type=Path,
        required=required,
        help="working folder: custody buffer in DIR/buffer, local store in DIR/store",
    )
