"""``cloud-coordinator models ...``: the model repository's command line.

::

    models init [--root-keys N] [--root-out FILE]   keys, repository, root.json
    models status                                   versions, expiry, roll-out
    models publish --head FILE [--approve] [--run-id ID]
    models publish --model FILE.tflite [--approve]  (metadata JSON beside it)
    models republish VERSION                        go back: old model, new version
    models promote | halt [--note TEXT]             move the canary roll-out
    models watch [--timeout-s N]                    promote/halt on canary health
    models refresh [--force]                        re-sign timestamp/snapshot

Exit codes besides the coordinator's: 6 the gate refused the candidate (run
again with ``--approve`` if R&D decides so) or ``watch`` halted the roll-out
because a canary refused it, 7 the roll-out or repository state does not
allow the action, 8 a canary watch ended without a verdict.
"""

from __future__ import annotations

import argparse
import functools
import json
import logging
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import numpy as np

from edge_agent.modelmgr.rollout import Stage

from ..config import CoordinatorConfig
from .errors import ModelRepoError, PublishRefused
from .keys import generate_role_keys
from .wiring import (
    build_publisher,
    build_repository,
    connect_announcer,
    open_records,
)

__all__ = ["EXIT_NO_VERDICT", "EXIT_REFUSED", "EXIT_STATE", "add_command"]

_LOGGER = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_REFUSED = 6
EXIT_STATE = 7
EXIT_NO_VERDICT = 8

_DESCRIPTION = """\
Publish crash models through the TUF repository in the [models] bucket of
the [store] backend, and steer their staged roll-out. Keys are PEM files in
[models] keys_dir (root.pem, targets.pem, snapshot.pem, timestamp.pem; keep
root offline after `init`). `publish` rebuilds the model from head weights
(a JSON {"kernel": [...], "bias": x} or a model metadata JSON with a "head"),
gates it on [models] validation_file rides against the fleet's model, signs
it with reference crashes and a roll-out plan (canaries: [models]
canary_gateways and canary_share) and announces it on [broker]
models/<name>/announce when [models] announce is on. Going back to an
earlier model is `republish VERSION`: TUF and the gateways refuse lower
versions, so the old model comes back under a new one. `refresh` re-signs
timestamp and snapshot before they expire (systemd timer
cloud-tuf-refresh.timer). Exit codes: 6 gate refused or roll-out halted by
`watch`, 7 state does not allow it, 8 canary watch without verdict."""


def add_command(commands: Any) -> None:
    """Add the ``models`` subcommand to the coordinator's parser."""
    models = commands.add_parser(
        "models",
        help="publish crash models (TUF) and steer roll-outs",
        description=_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = models.add_subparsers(dest="models_command", required=True)

    init = actions.add_parser("init", help="create keys and the repository")
    init.add_argument("--root-keys", type=int, default=1, help="root keys (default 1)")
    init.add_argument(
        "--root-out", type=Path, help="also write root.json here (for gateways)"
    )
    actions.add_parser("status", help="print versions, expiry and the roll-out plan")

    publish = actions.add_parser("publish", help="gate and publish a new model")
    source = publish.add_mutually_exclusive_group(required=True)
    source.add_argument("--head", type=Path, help="JSON with the head weights")
    source.add_argument("--model", type=Path, help="a ready .tflite (JSON beside it)")
    publish.add_argument("--approve", action="store_true", help="R&D approves")
    publish.add_argument("--run-id", help="the federated run of the weights")

    republish = actions.add_parser("republish", help="publish an old model anew")
    republish.add_argument("version", help="the earlier version to bring back")

    for name, text in (("promote", "complete the roll-out"), ("halt", "stop it")):
        action = actions.add_parser(name, help=text)
        action.add_argument("--note", default=f"{name} by R&D", help="recorded")

    watch = actions.add_parser("watch", help="promote or halt on canary health")
    watch.add_argument("--timeout-s", type=float, default=3600.0)

    refresh = actions.add_parser("refresh", help="re-sign timestamp and snapshot")
    refresh.add_argument("--force", action="store_true", help="even if not due")
    models.set_defaults(run=run)


def _head_weights(path: Path) -> tuple[np.ndarray, float]:
    document = json.loads(path.read_text(encoding="utf-8"))
    head = document.get("head", document) if isinstance(document, dict) else None
    if not isinstance(head, dict) or "kernel" not in head or "bias" not in head:
        raise ModelRepoError(f"{path}: expected {{'kernel': [...], 'bias': x}}")
    return np.asarray(head["kernel"], dtype=np.float32), float(head["bias"])


def _print(document: Any) -> None:
    print(json.dumps(document, indent=2, sort_keys=True, default=str))


def run(config: CoordinatorConfig, args: argparse.Namespace) -> int:
    """Run one ``models`` action; return the exit code."""
    try:
        return _run(config, args)
    except PublishRefused as exc:
        _LOGGER.error("models: %s", exc)
        return EXIT_REFUSED
    except (ModelRepoError, OSError, ValueError) as exc:
        _LOGGER.error("models %s: %s", args.models_command, exc)
        return EXIT_STATE


def _run(config: CoordinatorConfig, args: argparse.Namespace) -> int:
    action = args.models_command
    repo = build_repository(config)
    if action == "init":
        keys_dir = repo.keys.keys_dir
        generate_role_keys(keys_dir, root_keys=args.root_keys)
        repo.initialise(root_threshold=config.models.root_threshold)
        if args.root_out is not None:
            args.root_out.write_bytes(repo.root_bytes())
            print(f"wrote the gateways' trusted root to {args.root_out}")
        print(f"initialised {repo.label}; keys in {keys_dir}")
        return EXIT_OK
    if action == "refresh":
        resigned = repo.refresh(force=args.force)
        print(f"re-signed: {', '.join(resigned) or 'nothing due'}")
        return EXIT_OK
    if action == "status":
        publisher = build_publisher(config)
        plan = publisher.current_plan()
        _print(
            {
                "repository": repo.status().to_dict(),
                "published": publisher.published_versions(),
                "plan": None if plan is None else plan.to_dict(),
            }
        )
        return EXIT_OK

    with ExitStack() as stack:
        announcer = connect_announcer(config) if config.models.announce else None
        if announcer is not None:
            stack.callback(announcer.close)
        records = stack.enter_context(open_records(config))
        publisher = build_publisher(config, announcer=announcer, records=records)
        if action == "publish":
            if args.head is not None:
                kernel, bias = _head_weights(args.head)
                base = config.path(config.models.base_keras)
                outcome = publisher.publish_from_head(
                    kernel,
                    bias,
                    base_model=base,
                    approve=args.approve,
                    run_id=args.run_id,
                )
            else:
                outcome = publisher.publish_model(
                    args.model, args.model.with_suffix(".json"), approve=args.approve
                )
            _print(outcome.to_dict())
            return EXIT_OK if outcome.published else EXIT_REFUSED
        if action == "republish":
            _print(publisher.republish(args.version).to_dict())
            return EXIT_OK
        if action in ("promote", "halt"):
            stage = Stage.COMPLETE if action == "promote" else Stage.HALTED
            _print(publisher.set_stage(stage, args.note).to_dict())
            return EXIT_OK
        from ..broker import CloudMqttClient
        from .canary import Verdict, watch_canaries

        factory = functools.partial(
            CloudMqttClient.from_config,
            config,
            client_id=f"{config.broker.client_id}-canary-watch",
        )
        verdict = watch_canaries(
            publisher,
            factory,
            gateways_prefix=config.broker.gateways_prefix,
            min_canaries=config.models.min_canaries,
            timeout_s=args.timeout_s,
        )
        print(f"{verdict.verdict.value}: {verdict.describe()}")
        codes = {
            Verdict.HEALTHY: EXIT_OK,
            Verdict.FAILED: EXIT_REFUSED,
            Verdict.WAITING: EXIT_NO_VERDICT,
        }
        return codes[verdict.verdict]
