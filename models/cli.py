"""``crash-model``: train, export and evaluate the crash detector.

::

    crash-model train --out DIR [--seed S] [--crash-rides N] [--normal-rides N]
                      [--offbike-sessions N] [--hard-offbike-sessions N]
                      [--hard-riding-sessions N] [--validation-...] [--epochs E]
                      [--threads T] [--init-from RUN]
    crash-model export --run DIR --out PATH.tflite [--version V]
                       [--precision float32|int8|int8-full] [--evaluation FIGURES.json]
    crash-model evaluate [--model PATH.tflite ...] [--seed S] [--full]
                         [--crash-rides N --normal-rides N --offbike-sessions N]
                         [--hard-riding-sessions N] [--workers W] [--json OUT]
    crash-model evaluate --recording FILE [--time-unit U --accel-unit U
                         --gyro-unit U] [--column FIELD=HEADER] [--model PATH.tflite]

``train`` and ``export`` need TensorFlow (the ``train`` extra); ``evaluate``
runs exported files on LiteRT only, as a gateway would, on recordings from
seeds the models never saw (``--full``: 320 crashes, about 1,000 h riding
and 1,000 h off the bike). ``--recording`` runs a recorded file through the
gateway's own import and processing and prints its verdict (a recording too
coarse for the model gets none, with the reason). Without ``--model`` the
shipped model is used.

Exit codes:

- 0: done;
- 2: bad command line (argparse; nothing to evaluate; --json folder missing);
- 3: model error: file missing, metadata malformed, SHA-256 mismatch,
  contract mismatch, export check failed;
- 4: dataset error: recordings could not be synthesised as asked, or a
  recorded file could not be read;
- 5: evaluation seeds overlap a model's training seeds.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .errors import DatasetError, ModelError

__all__ = ["main"]

_LOGGER = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_USAGE = 2
EXIT_MODEL = 3
EXIT_DATASET = 4
EXIT_SEEDS = 5

# Evaluation recordings come from this seed's held-out range by default: far
# from the seeds a default training run uses.
DEFAULT_EVALUATION_SEED = 1001


def _whole(text: str, least: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < least:
        raise argparse.ArgumentTypeError(f"must be {least} or more, found {value}")
    return value


def _count(text: str) -> int:
    """Parse a count or seed (argparse type): a whole number, 0 or more."""
    return _whole(text, 0)


def _positive(text: str) -> int:
    """Parse a number of workers, threads or epochs (argparse type): 1 or more."""
    return _whole(text, 1)


def _parser() -> argparse.ArgumentParser:
    from edge_agent.ingest.units import ACCEL_UNITS, GYRO_UNITS, TIME_UNITS

    from .train import TrainConfig

    defaults = TrainConfig()
    parser = argparse.ArgumentParser(
        prog="crash-model",
        description="Crash detector model pipeline.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="exit codes:\n"
        "    0  done\n"
        "    2  bad command line\n"
        "    3  model error (missing, malformed, SHA-256 or contract mismatch)\n"
        "    4  dataset error (recordings or a recorded file)\n"
        "    5  evaluation seeds are a model's training seeds",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    commands = parser.add_subparsers(dest="command", required=True)

    train = commands.add_parser(
        "train",
        help="train on synthesised recordings",
        description="Synthesise crash rides, normal rides and off-bike sessions "
        "(random mount, range and rate), train the network, choose the decision "
        "rule on validation recordings from other seeds, write DIR.",
    )
    train.add_argument("--out", type=Path, required=True, help="run directory")
    train.add_argument("--seed", type=_count, default=defaults.seed)
    train.add_argument("--crash-rides", type=_count, default=defaults.crash_rides)
    train.add_argument("--normal-rides", type=_count, default=defaults.normal_rides)
    train.add_argument(
        "--offbike-sessions", type=_count, default=defaults.offbike_sessions
    )
    train.add_argument(
        "--validation-crash-rides",
        type=_count,
        default=defaults.validation_crash_rides,
    )
    train.add_argument(
        "--validation-normal-rides",
        type=_count,
        default=defaults.validation_normal_rides,
    )
    train.add_argument(
        "--validation-offbike-sessions",
        type=_count,
        default=defaults.validation_offbike_sessions,
    )
    train.add_argument(
        "--hard-offbike-sessions",
        type=_count,
        default=defaults.hard_offbike_sessions,
        help="extra off-bike sessions of sharp scenes only",
    )
    train.add_argument(
        "--hard-riding-sessions",
        type=_count,
        default=defaults.hard_riding_sessions,
        help="extra rides whose stunts follow one another (about 900 an hour)",
    )
    train.add_argument(
        "--init-from", default=None, help="continue from this run DIR's model"
    )
    train.add_argument("--learning-rate", type=float, default=defaults.learning_rate)
    train.add_argument("--epochs", type=_positive, default=defaults.epochs)
    train.add_argument(
        "--threads", type=_positive, default=defaults.threads, help="TensorFlow threads"
    )

    export = commands.add_parser("export", help="Keras run -> TFLite + metadata")
    export.add_argument("--run", type=Path, required=True, help="a train --out DIR")
    export.add_argument("--out", type=Path, required=True, help="model .tflite path")
    export.add_argument("--version", default="1.0.0", help="model version")
    export.add_argument("--precision", choices=("float32", "int8"), default="float32")
    export.add_argument(
        "--evaluation",
        type=Path,
        default=None,
        help="figures from evaluate --json to record in the metadata",
    )

    evaluate = commands.add_parser(
        "evaluate",
        help="score .tflite models on held-out recordings, or a recorded file",
        description="Event-level figures (recall, false alarms per 1000 h "
        "riding and off the bike, crash time error) by scenario, crash kind "
        "and native rate, on recordings from --seed's held-out range; with "
        "two models also their window agreement. --full is the documented "
        "held-out set (about 30 min on one core; --workers 2 halves it).",
    )
    evaluate.add_argument(
        "--model",
        type=Path,
        action="append",
        default=None,
        help=".tflite (repeatable; default: shipped)",
    )
    evaluate.add_argument("--seed", type=_count, default=DEFAULT_EVALUATION_SEED)
    evaluate.add_argument("--full", action="store_true", help="the full set")
    evaluate.add_argument("--crash-rides", type=_count, default=None)
    evaluate.add_argument("--normal-rides", type=_count, default=None)
    evaluate.add_argument("--offbike-sessions", type=_count, default=None)
    evaluate.add_argument(
        "--hard-riding-sessions",
        type=_count,
        default=None,
        help="add rides whose stunts follow one another (a stress set)",
    )
    evaluate.add_argument("--workers", type=_positive, default=1, help="processes")
    evaluate.add_argument("--json", type=Path, default=None, help="write figures")
    evaluate.add_argument(
        "--recording", type=Path, default=None, help="a recorded file to judge"
    )
    evaluate.add_argument("--time-unit", default=None, choices=sorted(TIME_UNITS))
    evaluate.add_argument("--accel-unit", default=None, choices=sorted(ACCEL_UNITS))
    evaluate.add_argument("--gyro-unit", default=None, choices=sorted(GYRO_UNITS))
    evaluate.add_argument(
        "--column",
        action="append",
        default=[],
        metavar="FIELD=HEADER",
        help="with --recording: map a field to a CSV header, e.g. time=stamp",
    )
    return parser


def _train(args: argparse.Namespace) -> int:
    from .train import TrainConfig, train_run

    config = TrainConfig(
        seed=args.seed,
        crash_rides=args.crash_rides,
        normal_rides=args.normal_rides,
        offbike_sessions=args.offbike_sessions,
        hard_offbike_sessions=args.hard_offbike_sessions,
        hard_riding_sessions=args.hard_riding_sessions,
        init_from=args.init_from,
        learning_rate=args.learning_rate,
        validation_crash_rides=args.validation_crash_rides,
        validation_normal_rides=args.validation_normal_rides,
        validation_offbike_sessions=args.validation_offbike_sessions,
        epochs=args.epochs,
        threads=args.threads,
    )
    started = time.perf_counter()
    result = train_run(config, args.out)
    total = result.validation["event"]["total"]
    print(f"run written to {result.run_dir} in {time.perf_counter() - started:.0f} s")
    print(
        f"decision: probability >= {result.decision.threshold:.4f} "
        f"for {result.decision.min_run_windows} window(s) in a row"
    )
    print(
        f"validation crashes: {total['detected']}/{total['crashes']} detected; "
        f"false alarms {total['false_alarms_riding']} in {total['riding_h']:.1f} h "
        f"riding, {total['false_alarms_offbike']} in {total['offbike_h']:.1f} h "
        "off the bike"
    )
    return EXIT_OK


def _export(args: argparse.Namespace) -> int:
    from .export import export_run

    evaluation = None
    if args.evaluation is not None:
        try:
            evaluation = json.loads(args.evaluation.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise DatasetError(
                f"{args.evaluation}: cannot read figures: {exc}"
            ) from exc
    metadata = export_run(args.run, args.out, args.version, args.precision, evaluation)
    print(
        f"{metadata.name} {metadata.version}: {args.out} "
        f"({metadata.size_bytes} bytes, sha256 {metadata.sha256})"
    )
    return EXIT_OK


def _evaluate(args: argparse.Namespace) -> int:
    from .registry import load_model_info, shipped_model

    infos = (
        [shipped_model()]
        if not args.model
        else [load_model_info(path) for path in args.model]
    )
    if args.recording is not None:
        return _evaluate_recording(args, infos[0])

    from dataclasses import replace

    from .assess import FULL_PLAN, QUICK_PLAN, assess_models
    from .dataset import VALIDATION_SEED_OFFSET, split_seeds
    from .report import print_figures

    for info in infos:
        trained_seed = info.metadata.training.get("config", {}).get("seed")
        if trained_seed == args.seed:
            print(
                f"crash-model: evaluation seed {args.seed} is the seed {info.path} "
                "was trained with; pick another --seed",
                file=sys.stderr,
            )
            return EXIT_SEEDS
    plan = FULL_PLAN if args.full else QUICK_PLAN
    counts = {
        "crash_rides": args.crash_rides,
        "normal_rides": args.normal_rides,
        "offbike_sessions": args.offbike_sessions,
        "hard_riding_sessions": args.hard_riding_sessions,
    }
    plan = replace(plan, **{k: v for k, v in counts.items() if v is not None})
    if plan.count == 0:
        print("crash-model: nothing to evaluate: every count is 0", file=sys.stderr)
        return EXIT_USAGE
    if plan.count >= VALIDATION_SEED_OFFSET:
        print(
            f"crash-model: {plan.count} recordings: at most "
            f"{VALIDATION_SEED_OFFSET - 1} fit in one seed's held-out range",
            file=sys.stderr,
        )
        return EXIT_USAGE
    if args.json is not None and not args.json.parent.is_dir():
        print(
            f"crash-model: --json {args.json}: folder {args.json.parent} does "
            "not exist (checked before the evaluation runs)",
            file=sys.stderr,
        )
        return EXIT_USAGE
    _, seeds = split_seeds(args.seed, 1, plan.count)
    assessment = assess_models(infos, seeds[0], plan, args.workers)
    figures: dict[str, Any] = {
        "seed": args.seed,
        "seeds": {"first": seeds[0], "last": seeds[-1]},
        "plan": {k: v for k, v in vars(plan).items()},
        "wall_s": round(assessment.wall_s, 1),
        **assessment.to_dict(),
    }
    print_figures(figures, sys.stdout)
    print(f"wall time {assessment.wall_s:.0f} s")
    if args.json is not None:
        args.json.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    return EXIT_OK


def _evaluate_recording(args: argparse.Namespace, info: Any) -> int:
    """Run a recorded file through the gateway's import and print its verdict."""
    import tempfile

    from edge_agent.ingest.columns import FIELDS, parse_overrides
    from edge_agent.ingest.importer import ingest_file
    from edge_agent.ingest.units import UnitOptions
    from edge_agent.processing.crash import CrashDetector

    units = UnitOptions(
        time_unit=args.time_unit, accel_unit=args.accel_unit, gyro_unit=args.gyro_unit
    )
    try:
        columns = parse_overrides(args.column, known=FIELDS) or None
    except ValueError as exc:
        print(f"crash-model evaluate: {exc}", file=sys.stderr)
        return EXIT_USAGE
    with tempfile.TemporaryDirectory(prefix="crash-eval-") as out:
        try:
            result = ingest_file(
                args.recording,
                "evaluation",
                "evaluation",
                Path(out),
                CrashDetector(info),
                units=units,
                columns=columns,
            )
        except Exception as exc:  # the importer's errors name file and place
            message = str(exc)
            if str(args.recording) not in message:
                message = f"{args.recording}: {message}"
            raise DatasetError(message) from exc
    analytics = result.analytics
    crash = analytics["crash"]
    print(
        f"{args.recording}: {analytics['samples']} samples at "
        f"{analytics['sample_rate_hz']:.3g} Hz, {analytics['duration_s']:.0f} s"
    )
    if crash["detected"] is None:
        print(f"no verdict: {crash.get('reason')}")
    else:
        print(f"crash detected: {str(crash['detected']).lower()}")
        for event in crash["events"]:
            print(
                f"  at {event['t_offset_s']:.2f} s: probability "
                f"{event['probability']:.3f}, peak {event['peak_g']:.1f} g"
            )
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``crash-model`` command line; return the exit code."""
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    handlers = {"train": _train, "export": _export, "evaluate": _evaluate}
    try:
        return handlers[args.command](args)
    except ModelError as exc:
        if isinstance(exc, DatasetError):
            print(f"crash-model: dataset error: {exc}", file=sys.stderr)
            return EXIT_DATASET
        print(f"crash-model: model error: {exc}", file=sys.stderr)
        return EXIT_MODEL


if __name__ == "__main__":
    sys.exit(main())
