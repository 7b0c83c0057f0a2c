"""``cloud-coordinator fl``: start and follow federated runs, riders' consent.

Commands::

    fl start --rounds N --min-nodes K [--strategy S] [--set KEY=VALUE ...] [--wait]
    fl status [RUN_KEY] [--json]
    fl register-node --public-key FILE [--name NAME]
    fl consent --rider ID (--opt-out | --opt-in)
    fl consent --resend

Exit codes follow ``cloud-coordinator`` (0 ok, 2 usage, 3 configuration,
4 catalog) plus 6: the SuperLink's Control API refused or cannot be reached,
7: a run ended failed (``start --wait``), 8: a consent is stored but not yet
on every gateway (the broker did not acknowledge; ``--resend`` later).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
import tomllib
from typing import Any

from ..catalog import Catalog, InvalidRecord
from ..catalog.fl_records import FederatedRun
from ..config import CoordinatorConfig
from ..wiring import build_catalog
from .errors import ControlError, RunConfigError
from .runs import RunReport, RunRequest
from .service import ConsentOutcome, FederatedService
from .settings import STRATEGIES

__all__ = ["add_command"]

_LOGGER = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_USAGE = 2
EXIT_SUPERLINK = 6
EXIT_RUN_FAILED = 7
EXIT_NOT_PUBLISHED = 8
# How often `start --wait` looks at the catalog.
_WAIT_POLL_S = 5.0

_DESCRIPTION = """\
Federated training of the crash model's head on the gateways (Flower
Deployment Engine). `start` records a run in the catalog and submits the
app to the SuperLink's Control API ([fl] superlink, over TLS with
[fl] root_certificates unless [fl] insecure); the ServerApp records every
round (participants, losses, evaluation) and writes the aggregated head to
[fl] out_dir/head-<run>.json, which `cloud-coordinator models publish`
turns into a signed model. `--set` passes further run settings, e.g.
`--set trim-beta=0.34 --set dp-noise-multiplier=1.0 --set
dp-clipping-norm=0.5` (keys: cloud_coordinator/fl/settings.py).
`register-node` registers a gateway's SuperNode public key (OpenSSH EC,
from `ssh-keygen -t ecdsa`) when the SuperLink runs with
--enable-supernode-auth. `consent` records a rider's training choice and
sends it to the rider's gateways over [broker]. Exit codes: 0 ok, 2 usage,
3 configuration, 4 catalog, 6 SuperLink unavailable or refused, 7 run
failed, 8 consent stored but not on every gateway yet."""


def add_command(commands: Any) -> None:
    """Add ``fl`` and its sub-commands to the ``cloud-coordinator`` parser."""
    parser = commands.add_parser(
        "fl",
        help="federated runs: start, status, node registration, consent",
        description=_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = parser.add_subparsers(dest="fl_command", required=True)

    start = actions.add_parser("start", help="start a federated run")
    start.add_argument("--rounds", type=int, required=True, help="rounds to run")
    start.add_argument(
        "--min-nodes", type=int, required=True, help="quorum of gateways per round"
    )
    start.add_argument("--strategy", choices=STRATEGIES, default="fedavg")
    start.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a further run setting (TOML value), repeatable",
    )
    start.add_argument("--wait", action="store_true", help="follow until the end")

    status = actions.add_parser("status", help="a run and its rounds, or recent runs")
    status.add_argument("run_key", nargs="?", help="run key (default: list runs)")
    status.add_argument("--json", action="store_true", help="print JSON")

    register = actions.add_parser("register-node", help="register a SuperNode key")
    register.add_argument("--public-key", required=True, help="OpenSSH EC public key")
    register.add_argument("--name", default="", help="a name for the node")

    consent = actions.add_parser("consent", help="a rider's training choice")
    consent.add_argument("--rider", help="rider id")
    choice = consent.add_mutually_exclusive_group()
    choice.add_argument("--opt-out", action="store_true", help="exclude from training")
    choice.add_argument("--opt-in", action="store_true", help="allow training again")
    consent.add_argument(
        "--resend", action="store_true", help="send choices not yet acknowledged"
    )
    parser.set_defaults(run=run)


def _settings(pairs: list[str]) -> dict[str, Any]:
    settings: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise RunConfigError(f"--set {pair!r}: expected KEY=VALUE")
        try:
            settings[key] = tomllib.loads(f"v = {value}")["v"]
        except tomllib.TOMLDecodeError:
            settings[key] = value  # a bare word is a string
    return settings


def _print_runs(runs: list[FederatedRun], as_json: bool) -> None:
    """Print the latest runs, newest first (or say there are none)."""
    if as_json:
        print(json.dumps([RunReport(run, []).to_dict()["run"] for run in runs]))
        return
    if not runs:
        print("no federated runs yet (start one with `cloud-coordinator fl start`)")
    for item in runs:
        print(
            f"{item.run_key}  {item.state:<9} {item.strategy:<12} "
            f"{item.rounds} rounds, quorum {item.min_nodes}, by {item.requested_by}"
        )


def _print_report(report: RunReport, as_json: bool) -> None:
    if as_json:
        print(json.dumps(report.to_dict(), indent=2))
        return
    run = report.run
    print(
        f"run {run.run_key}: {run.state} ({run.strategy}, {run.rounds} rounds, "
        f"quorum {run.min_nodes}, SuperLink run {run.flower_run_id})"
    )
    if run.detail:
        print(f"  {run.detail}")
    for record in report.rounds:
        print(
            f"  round {record.round}: {record.status}, {record.participants} of "
            f"{record.sampled} sampled, {record.declined} declined or late, "
            f"train loss {record.train_loss}, eval loss {record.eval_loss}, "
            f"eval recall {record.eval_recall}, {record.duration_s:.1f} s"
        )
    if run.result and "head_file" in run.result:
        print(f"  aggregated head: {run.result['head_file']}")


def _print_consent(outcome: ConsentOutcome) -> None:
    consent = outcome.consent
    state = "published" if outcome.published else f"NOT published: {outcome.reason}"
    print(
        f"rider {consent.rider_id}: {'opted out' if consent.opted_out else 'allowed'} "
        f"(command {consent.command_id}), gateways {outcome.gateways or 'none known'}"
        f", {state}"
    )


def _consent(config: CoordinatorConfig, catalog: Catalog, args: Any) -> int:
    from ..broker import CloudMqttClient

    if not args.resend and (args.rider is None or not (args.opt_out or args.opt_in)):
        print("fl consent: give --rider and --opt-out/--opt-in, or --resend")
        return EXIT_USAGE
    client = CloudMqttClient.from_config(
        config, client_id=f"{config.broker.client_id}-fl-consent"
    )
    publisher: CloudMqttClient | None = client
    try:
        client.connect(config.crashes.connect_timeout_s)
    except Exception as exc:  # the choice is stored anyway, sent later
        _LOGGER.warning("broker %s unavailable: %s", client.where, exc)
        publisher = None
    try:
        if args.resend:
            outcomes = FederatedService.publish_pending_consents(
                catalog, publisher, config.broker
            )
        else:
            outcomes = [
                FederatedService.set_consent(
                    catalog,
                    publisher,
                    config.broker,
                    args.rider,
                    opted_out=bool(args.opt_out),
                )
            ]
    finally:
        if publisher is not None:
            client.close()
    for outcome in outcomes:
        _print_consent(outcome)
    return EXIT_OK if all(o.published for o in outcomes) else EXIT_NOT_PUBLISHED


def run(config: CoordinatorConfig, args: argparse.Namespace) -> int:
    """Run one ``fl`` sub-command; return the exit code."""
    service = FederatedService.from_config(config)
    if args.fl_command == "register-node":
        try:
            with service.control() as control:
                node_id = control.register_node(args.public_key, args.name)
        except ControlError as exc:
            _LOGGER.error("%s", exc)
            return EXIT_SUPERLINK
        print(f"registered SuperNode key {args.public_key} as node {node_id}")
        return EXIT_OK

    catalog = build_catalog(config)
    try:
        catalog.migrate()
        if args.fl_command == "consent":
            return _consent(config, catalog, args)
        if args.fl_command == "status":
            if args.run_key is None:
                _print_runs(catalog.list_fl_runs(limit=20), args.json)
                return EXIT_OK
            report = service.report(catalog, args.run_key)
            if report is None:
                print(f"fl status: no run {args.run_key!r}", file=sys.stderr)
                return EXIT_USAGE
            _print_report(report, args.json)
            return EXIT_OK

        request = RunRequest(
            rounds=args.rounds,
            min_nodes=args.min_nodes,
            strategy=args.strategy,
            overrides=_settings(args.set),
        )
        try:
            started = service.start(catalog, request, requested_by="cli")
        except RunConfigError as exc:
            print(f"fl start: {exc}", file=sys.stderr)
            return EXIT_USAGE
        except (ControlError, InvalidRecord) as exc:
            _LOGGER.error("%s", exc)
            return EXIT_SUPERLINK
        print(f"started run {started.run_key} (SuperLink run {started.flower_run_id})")
        if not args.wait:
            return EXIT_OK
        while True:
            report = service.report(catalog, started.run_key)
            assert report is not None
            if report.run.state.finished:
                _print_report(report, False)
                return EXIT_OK if report.run.state == "finished" else EXIT_RUN_FAILED
            time.sleep(_WAIT_POLL_S)
    finally:
        catalog.close()
