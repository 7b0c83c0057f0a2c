"""Drive a fuzz target: write its seeds, run libFuzzer, summarise the run.

Run from the repository root (see ``fuzz/README.md``)::

    .venv/bin/python -m fuzz.run --target logformat --seconds 600
    .venv/bin/python -m fuzz.run --target logformat --reproduce FILE...
    .venv/bin/python -m fuzz.run --target logformat --minimize FILE
    .venv/bin/python -m fuzz.run --target logformat --merge
    .venv/bin/python -m fuzz.run --target logformat --line-coverage

Everything a run writes goes under ``--workdir`` (default ``.fuzz/``, ignored
by git), per target: ``seeds/`` (regenerated every run), ``corpus/`` (grows
across runs), ``artifacts/`` (crash-, timeout-, oom- inputs), ``logs/`` (the
fuzzer's output) and ``last-run.json`` (the figures of the last run).
``--merge`` distils ``corpus/`` into the committed ``fuzz/corpus/TARGET/``;
``--line-coverage`` replays seeds and both corpora and prints the project
lines they reach.

Exit codes::

    0  the run finished and found nothing (or --reproduce: every input passed)
    1  a finding: libFuzzer wrote an artifact (or --reproduce: an input raised)
    2  usage error (unknown target, missing file)
    3  the fuzzer itself failed (did not start, or died without an artifact)
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import traceback
from dataclasses import asdict
from pathlib import Path

from fuzz import LAUNCHER_ENV, SUPPRESS_ENV
from fuzz.linecov import line_coverage
from fuzz.summary import RunSummary, parse_output
from fuzz.targets import TARGET_NAMES, FuzzTarget, load_target
from fuzz.targets._common import remove_scratch_dirs, strict_logging

__all__ = ["EXIT_FINDING", "EXIT_FUZZER_FAILED", "EXIT_OK", "EXIT_USAGE", "main"]

EXIT_OK = 0
EXIT_FINDING = 1
EXIT_USAGE = 2
EXIT_FUZZER_FAILED = 3

REPO_ROOT = Path(__file__).resolve().parents[1]
COMMITTED_CORPUS = REPO_ROOT / "fuzz" / "corpus"

# Python, NumPy, PyArrow and the instrumented project take about 150-250 MB;
# the decoder's largest legal read is one 4 MiB block. 2 GiB leaves room for
# both and still stops an input that makes a parser allocate without bound.
DEFAULT_RSS_LIMIT_MB = 2048
# Every seed parses in well under 10 ms; an input that takes 10 s is a hang
# for an agent that processes logs unattended.
DEFAULT_TIMEOUT_S = 10
# Share the machine: fuzzing runs for minutes on cores others use too.
DEFAULT_NICE = 10
# --minimize gets this long to shrink a crashing input.
MINIMIZE_SECONDS = 120

_ARTIFACT_PREFIXES = ("crash-", "timeout-", "oom-", "leak-", "slow-unit-")


def _target_dirs(workdir: Path, name: str) -> dict[str, Path]:
    base = workdir / name
    dirs = {
        "base": base,
        "seeds": base / "seeds",
        "corpus": base / "corpus",
        "artifacts": base / "artifacts",
        "logs": base / "logs",
    }
    for path in dirs.values():
        path.mkdir(parents=True, exist_ok=True)
    return dirs


def write_seeds(target: FuzzTarget, seeds_dir: Path) -> int:
    """Replace ``seeds_dir`` contents with the target's seeds; return count."""
    for old in seeds_dir.iterdir():
        if old.is_file():
            old.unlink()
    seeds = target.seeds()
    for name, data in seeds.items():
        (seeds_dir / f"seed-{name}").write_bytes(data)
    return len(seeds)


def write_dictionary(target: FuzzTarget, path: Path) -> None:
    """Write the target's tokens in libFuzzer's -dict format."""
    lines = []
    for index, token in enumerate(target.DICTIONARY):
        escaped = "".join(f"\\x{byte:02x}" for byte in token)
        lines.append(f'token_{index}="{escaped}"')
    path.write_text("\n".join(lines) + "\n")


def _fuzzer_command(name: str, flags: list[str]) -> list[str]:
    return [sys.executable, "-m", "fuzz.atheris_main", name, *flags]


def write_launcher(name: str, path: Path) -> None:
    """Write the executable script libFuzzer re-runs as its own argv[0]."""
    path.write_text(
        "#!/bin/sh\n"
        f"cd {shlex.quote(str(REPO_ROOT))} || exit 3\n"
        f'exec {shlex.quote(sys.executable)} -m fuzz.atheris_main {name} "$@"\n'
    )
    path.chmod(0o755)


def _run_logged(
    name: str,
    flags: list[str],
    log_path: Path,
    niceness: int,
    suppress: tuple[str, ...] = (),
) -> int:
    """Run the target under libFuzzer, copying output to console and log."""

    def lower_priority() -> None:
        if niceness > 0:
            os.nice(niceness)

    launcher = log_path.parent.parent / "launch.sh"
    write_launcher(name, launcher)
    env = dict(os.environ, **{LAUNCHER_ENV: str(launcher)})
    env[SUPPRESS_ENV] = ",".join(suppress)
    command = _fuzzer_command(name, flags)

    with open(log_path, "w", encoding="utf-8", errors="replace") as log:
        log.write(" ".join(command) + "\n")
        process = subprocess.Popen(
            command,
            cwd=REPO_ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            preexec_fn=lower_priority,
            env=env,
        )
        assert process.stdout is not None
        for text in process.stdout:
            sys.stdout.write(text)
            log.write(text)
        code = process.wait()
    remove_scratch_dirs(name, process.pid)
    return code


def _artifacts(directory: Path) -> set[Path]:
    return {
        path
        for path in directory.iterdir()
        if path.is_file() and path.name.startswith(_ARTIFACT_PREFIXES)
    }


def fuzz(args: argparse.Namespace, target: FuzzTarget) -> int:
    """Run libFuzzer on the target for ``args.seconds``; return an exit code."""
    dirs = _target_dirs(args.workdir, args.target)
    seed_count = write_seeds(target, dirs["seeds"])
    dictionary = dirs["base"] / "dict.txt"
    write_dictionary(target, dictionary)
    started = dt.datetime.now(dt.UTC)
    stamp = started.strftime("%Y%m%dT%H%M%SZ")
    log_path = dirs["logs"] / f"run-{stamp}.log"
    corpora = [dirs["corpus"], dirs["seeds"]]
    committed = COMMITTED_CORPUS / args.target
    if committed.is_dir():
        corpora.append(committed)
    flags = [
        f"-max_total_time={args.seconds}",
        f"-max_len={args.max_len or target.MAX_LEN}",
        f"-rss_limit_mb={args.rss_limit_mb}",
        f"-timeout={args.timeout_s}",
        f"-dict={dictionary}",
        f"-artifact_prefix={dirs['artifacts']}/",
        "-print_final_stats=1",
        *args.libfuzzer_flags,
        *(str(path) for path in corpora),
    ]
    command = _fuzzer_command(args.target, flags)
    summary = RunSummary(args.target, args.seconds, started.isoformat())
    summary.command = command
    summary.suppressed = list(args.suppress)
    summary.log_path = str(log_path)
    before = _artifacts(dirs["artifacts"])
    print(
        f"fuzz.run: {args.target}: {seed_count} seeds, {args.seconds} s, "
        f"log {log_path}",
        flush=True,
    )

    code = _run_logged(args.target, flags, log_path, args.nice, args.suppress)

    summary.exit_code = code
    summary.wall_seconds = (dt.datetime.now(dt.UTC) - started).total_seconds()
    parse_output(log_path.read_text(encoding="utf-8", errors="replace"), summary)
    summary.artifacts = sorted(str(p) for p in _artifacts(dirs["artifacts"]) - before)
    (dirs["base"] / "last-run.json").write_text(
        json.dumps(asdict(summary), indent=2) + "\n"
    )
    print(f"fuzz.run: {summary.line()}", flush=True)
    if summary.artifacts:
        return EXIT_FINDING
    return EXIT_OK if code == 0 else EXIT_FUZZER_FAILED


def reproduce(target: FuzzTarget, paths: list[Path]) -> int:
    """Run the harness body (uninstrumented) on each file; report each result."""
    failed = 0
    with strict_logging():
        for path in paths:
            try:
                target.one_input(path.read_bytes())
            except Exception:  # a finding: show it and go on with the next file
                failed += 1
                print(f"{path}: FAILED", flush=True)
                traceback.print_exc()
            else:
                print(f"{path}: ok", flush=True)
    return EXIT_FINDING if failed else EXIT_OK


def minimize(args: argparse.Namespace, crash: Path) -> int:
    """Shrink a crashing input with libFuzzer's -minimize_crash."""
    dirs = _target_dirs(args.workdir, args.target)
    out = dirs["artifacts"] / f"minimized-{crash.name}"
    flags = [
        "-minimize_crash=1",
        f"-max_total_time={MINIMIZE_SECONDS}",
        f"-timeout={args.timeout_s}",
        f"-rss_limit_mb={args.rss_limit_mb}",
        f"-exact_artifact_path={out}",
        *args.libfuzzer_flags,
        str(crash),
    ]
    log_path = dirs["logs"] / f"minimize-{crash.name}.log"
    code = _run_logged(args.target, flags, log_path, args.nice)
    if not out.exists():
        print(f"fuzz.run: minimising failed (exit {code}); see {log_path}")
        return EXIT_FUZZER_FAILED
    print(
        f"fuzz.run: {crash} ({crash.stat().st_size} bytes) -> {out} "
        f"({out.stat().st_size} bytes)"
    )
    return EXIT_OK


def merge(args: argparse.Namespace, target: FuzzTarget) -> int:
    """Distil the run corpus and seeds into ``fuzz/corpus/TARGET/``."""
    dirs = _target_dirs(args.workdir, args.target)
    write_seeds(target, dirs["seeds"])
    committed = COMMITTED_CORPUS / args.target
    with tempfile.TemporaryDirectory(dir=dirs["base"]) as fresh:
        sources = [dirs["corpus"], dirs["seeds"]]
        if committed.is_dir():
            sources.append(committed)
        flags = [
            "-merge=1",
            f"-max_len={args.max_len or target.MAX_LEN}",
            f"-timeout={args.timeout_s}",
            f"-rss_limit_mb={args.rss_limit_mb}",
            *args.libfuzzer_flags,
            fresh,
            *(str(path) for path in sources),
        ]
        log_path = dirs["logs"] / "merge.log"
        code = _run_logged(args.target, flags, log_path, args.nice)
        if code != 0:
            return EXIT_FUZZER_FAILED
        if committed.is_dir():
            shutil.rmtree(committed)
        committed.mkdir(parents=True)
        total = 0
        for unit in Path(fresh).iterdir():
            total += unit.stat().st_size
            shutil.copy2(unit, committed / unit.name)
    units = len(list(committed.iterdir()))
    print(f"fuzz.run: {committed}: {units} units, {total} bytes")
    return EXIT_OK


def _compact(lines: tuple[int, ...]) -> str:
    """Return line numbers as ranges: ``3-5,9``."""
    spans: list[list[int]] = []
    for line in lines:
        if spans and line == spans[-1][1] + 1:
            spans[-1][1] = line
        else:
            spans.append([line, line])
    return ",".join(f"{a}-{b}" if a != b else f"{a}" for a, b in spans)


def report_line_coverage(args: argparse.Namespace, target: FuzzTarget) -> int:
    """Print the project lines that the seeds and corpora reach."""
    dirs = _target_dirs(args.workdir, args.target)
    inputs = list(target.seeds().values())
    for folder in (dirs["corpus"], COMMITTED_CORPUS / args.target):
        if folder.is_dir():
            inputs += [unit.read_bytes() for unit in sorted(folder.iterdir())]
    with strict_logging():
        report = line_coverage(target.one_input, inputs)
    print(f"fuzz.run: {args.target}: line coverage of {len(inputs)} inputs")
    for entry in report:
        print(
            f"  {entry.path}: {entry.executed}/{entry.executable} "
            f"({entry.percent:.0f} %) missed {_compact(entry.missed) or '-'}"
        )
    return EXIT_OK


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m fuzz.run",
        description="Fuzz a parser of the project with atheris (libFuzzer).",
        epilog="Exit codes: 0 nothing found, 1 finding, 2 usage, 3 fuzzer failed.",
    )
    parser.add_argument("--target", required=True, choices=TARGET_NAMES)
    parser.add_argument("--seconds", type=int, default=600, help="run length")
    parser.add_argument("--max-len", type=int, default=0, help="0: the target's")
    parser.add_argument("--rss-limit-mb", type=int, default=DEFAULT_RSS_LIMIT_MB)
    parser.add_argument("--timeout-s", type=int, default=DEFAULT_TIMEOUT_S)
    parser.add_argument("--nice", type=int, default=DEFAULT_NICE)
    parser.add_argument("--workdir", type=Path, default=REPO_ROOT / ".fuzz")
    parser.add_argument(
        "--suppress",
        action="append",
        default=[],
        metavar="NAME",
        help="let a known finding pass (see the target's KNOWN_FINDINGS)",
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--reproduce", type=Path, nargs="+", metavar="FILE")
    mode.add_argument("--minimize", type=Path, metavar="FILE")
    mode.add_argument("--merge", action="store_true")
    mode.add_argument("--line-coverage", action="store_true")
    parser.add_argument(
        "libfuzzer_flags",
        nargs="*",
        help="extra libFuzzer flags after --, e.g. -- -use_value_profile=1",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and run the chosen mode; return the exit code."""
    args = _parser().parse_args(argv)
    args.suppress = tuple(args.suppress)
    missing = [
        p for p in (args.reproduce or []) + [args.minimize] if p and not p.exists()
    ]
    if missing:
        print(f"fuzz.run: no such file: {', '.join(map(str, missing))}")
        return EXIT_USAGE
    if args.minimize:
        return minimize(args, args.minimize)
    target = load_target(args.target)
    known = getattr(target, "KNOWN_FINDINGS", {})
    unknown = [name for name in args.suppress if name not in known]
    if unknown:
        print(f"fuzz.run: {args.target} has no known finding {unknown}; {list(known)}")
        return EXIT_USAGE
    if args.reproduce:
        return reproduce(target, args.reproduce)
    if args.merge:
        return merge(args, target)
    if args.line_coverage:
        return report_line_coverage(args, target)
    return fuzz(args, target)


if __name__ == "__main__":
    sys.exit(main())
