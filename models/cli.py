"""``crash-model``: train, export and evaluate the crash detector.

::

    crash-model train --out DIR [--rides N] [--validation-rides N]
                      [--seed S] [--epochs E]
    crash-model export --run DIR --out PATH.tflite [--version V]
    crash-model evaluate [--model PATH.tflite] [--rides N] [--seed S]

``train`` and ``export`` need TensorFlow (the ``train`` extra); ``evaluate``
runs the exported file on LiteRT only, as a gateway would, on rides from
seeds the model never saw; without ``--model`` it evaluates the shipped one.

Exit codes:

- 0: done;
- 2: bad command line (argparse);
- 3: model error: file missing, metadata malformed, SHA-256 mismatch,
  contract mismatch, export check failed;
- 4: dataset error: rides could not be synthesised as asked;
- 5: evaluation seeds overlap the model's training seeds.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from .errors import DatasetError, ModelError

__all__ = ["main"]

_LOGGER = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_MODEL = 3
EXIT_DATASET = 4
EXIT_SEEDS = 5

# Evaluation rides come from this seed's validation range by default: far from
# the seeds a default training run uses.
DEFAULT_EVALUATION_SEED = 1001
DEFAULT_EVALUATION_RIDES = 40


def _parser() -> argparse.ArgumentParser:
    from .train import TrainConfig

    defaults = TrainConfig()
    parser = argparse.ArgumentParser(
        prog="crash-model", description="Crash detector model pipeline."
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    commands = parser.add_subparsers(dest="command", required=True)

    train = commands.add_parser("train", help="train on synthesised rides")
    train.add_argument("--out", type=Path, required=True, help="run directory")
    train.add_argument("--rides", type=int, default=defaults.train_rides)
    train.add_argument(
        "--validation-rides", type=int, default=defaults.validation_rides
    )
    train.add_argument("--seed", type=int, default=defaults.seed)
    train.add_argument("--epochs", type=int, default=defaults.epochs)

    export = commands.add_parser("export", help="Keras run -> TFLite + metadata")
    export.add_argument("--run", type=Path, required=True, help="a train --out DIR")
    export.add_argument("--out", type=Path, required=True, help="model .tflite path")
    export.add_argument("--version", default="1.0.0", help="model version")

    evaluate = commands.add_parser("evaluate", help="score a .tflite on new rides")
    evaluate.add_argument(
        "--model", type=Path, default=None, help=".tflite (default: shipped)"
    )
    evaluate.add_argument("--rides", type=int, default=DEFAULT_EVALUATION_RIDES)
    evaluate.add_argument("--seed", type=int, default=DEFAULT_EVALUATION_SEED)
    return parser


def _train(args: argparse.Namespace) -> int:
    from .train import TrainConfig, train_run

    config = TrainConfig(
        seed=args.seed,
        train_rides=args.rides,
        validation_rides=args.validation_rides,
        epochs=args.epochs,
    )
    started = time.perf_counter()
    result = train_run(config, args.out)
    window = result.validation["window"]
    event = result.validation["event"]
    print(f"run written to {result.run_dir} in {time.perf_counter() - started:.0f} s")
    print(
        f"decision: probability >= {result.decision.threshold:.3f} "
        f"for {result.decision.min_run_windows} window(s) in a row"
    )
    print(
        f"validation windows: precision {window['precision']:.3f} "
        f"recall {window['recall']:.3f} AUC {window['auc']:.4f}"
    )
    print(
        f"validation crashes: {event['detected']}/{event['crashes']} detected, "
        f"{event['false_alarms']} false alarms in {event['riding_h']:.2f} h "
        f"({event['false_alarms_per_h']:.2f}/h)"
    )
    return EXIT_OK


def _export(args: argparse.Namespace) -> int:
    from .export import export_run

    metadata = export_run(args.run, args.out, args.version)
    print(
        f"{metadata.name} {metadata.version}: {args.out} "
        f"({metadata.size_bytes} bytes, sha256 {metadata.sha256})"
    )
    return EXIT_OK


def _evaluate(args: argparse.Namespace) -> int:
    from .assess import assess_model
    from .dataset import split_seeds
    from .registry import load_model_info, shipped_model

    info = shipped_model() if args.model is None else load_model_info(args.model)
    training = info.metadata.training
    trained_seed = training.get("config", {}).get("seed")
    if trained_seed == args.seed:
        print(
            f"crash-model: evaluation seed {args.seed} is the seed {info.path} was "
            "trained with; pick another --seed",
            file=sys.stderr,
        )
        return EXIT_SEEDS
    _, seeds = split_seeds(args.seed, 1, args.rides)

    assessment = assess_model(info, seeds)
    rule = info.metadata.decision
    window = assessment.window
    event = assessment.event
    print(f"model {info.name} {info.version} ({info.path})")
    print(
        f"rides: {assessment.rides} (seeds {assessment.seeds[0]}..."
        f"{assessment.seeds[1]}), decision: probability >= {rule.threshold:.3f} "
        f"for {rule.min_run_windows} window(s)"
    )
    print(
        f"windows: {window.positives} positive, {window.negatives} negative; "
        f"precision {window.precision:.3f} recall {window.recall:.3f} "
        f"AUC {window.auc:.4f}"
    )
    print(
        f"crashes: {event.detected}/{event.crashes} detected (recall "
        f"{event.recall:.3f}); false alarms {event.false_alarms} in "
        f"{event.riding_h:.2f} h of riding ({event.false_alarms_per_h:.2f}/h)"
    )
    for kind, (detected, total) in assessment.by_crash_kind.items():
        print(f"  {kind}: {detected}/{total} detected")
    print(
        f"inference: {assessment.seconds_per_batch * 1e3:.2f} ms per batch of "
        "64 windows"
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
