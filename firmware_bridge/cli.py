"""Command line of the firmware bridge: ``firmware-bridge synth|decode|emulate``.

Each subcommand is one ``_register_<name>`` function that adds its parser and
sets its handler; ``COMMANDS`` lists them. Handlers return an exit code or
raise a ``CliError``, whose subclass carries the exit code::

    CliError
    ├── UsageError       2  options that do not make sense together
    ├── InputFileError   3  the input is missing, unreadable or not a suit log
    └── OutputError      4  an output file or folder cannot be written
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import numpy.typing as npt

from firmware_bridge.emulate_cli import register_emulate
from firmware_bridge.logformat import (
    BlockType,
    EventKind,
    LogFormatError,
    LogHeader,
    LogReader,
    raw_to_physical,
)

__all__ = [
    "COMMANDS",
    "EXIT_BAD_INPUT",
    "EXIT_INTERNAL",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_OUTPUT",
    "EXIT_USAGE",
    "CliError",
    "InputFileError",
    "OutputError",
    "UsageError",
    "build_parser",
    "main",
]

_LOGGER = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_INTERNAL = 1
EXIT_USAGE = 2
EXIT_BAD_INPUT = 3
EXIT_OUTPUT = 4
EXIT_INTERRUPTED = 130

_EPILOG = """\
exit codes:
  0    done
  1    internal error (a bug: report it with the traceback shown)
  2    usage error: bad or conflicting options (nothing was written)
  3    bad input file: missing, unreadable, or not a valid suit log (the
       message names the file, byte offset and field)
  4    cannot write output (permissions, disk full); partial files are removed
  130  interrupted (Ctrl-C)
"""

# CSV rows gathered before each write: big enough to amortise the writer,
# small enough (a few MB) to keep memory flat on a 250 MB log.
_CSV_BATCH_ROWS = 65_536
_U32 = 1 << 32


class CliError(Exception):
    """An error the CLI reports as one line and an exit code."""

    exit_code = EXIT_INTERNAL


class UsageError(CliError):
    """Options that do not make sense together."""

    exit_code = EXIT_USAGE


class InputFileError(CliError):
    """The input file is missing, unreadable or not a suit log."""

    exit_code = EXIT_BAD_INPUT


class OutputError(CliError):
    """An output file or folder cannot be written."""

    exit_code = EXIT_OUTPUT


# synth ---------------------------------------------------------------------


def _register_synth(sub: Any) -> None:
    from firmware_bridge.synth import CRASH_KINDS, SCENARIOS
    from firmware_bridge.synth.spec import ACCEL_FULL_SCALES_G, GYRO_FULL_SCALES_DPS

    p = sub.add_parser(
        "synth",
        help="synthesise ride logs with their truth files",
        description="Write synthetic suit logs (<log_id>.slog) and beside each "
        "its true ride analytics (<log_id>.slog.truth.json). The same options "
        "always give the same bytes.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--out", required=True, type=Path, help="output folder")
    p.add_argument(
        "--seed", type=int, default=None, help="first ride's seed (default 1)"
    )
    p.add_argument("--count", type=int, default=1, help="rides to write (seeds seed..)")
    p.add_argument("--scenario", choices=SCENARIOS, default=None, help="default mixed")
    p.add_argument(
        "--riding-s", type=float, default=None, help="riding time (default 600)"
    )
    p.add_argument(
        "--rate-hz", type=float, default=None, help="sample rate (default 1000)"
    )
    p.add_argument("--crash", choices=(*CRASH_KINDS, "random"), default=None)
    p.add_argument("--crash-at-s", type=float, default=None, help="seconds into riding")
    p.add_argument("--walk-before-s", type=float, default=None, help="default 30")
    p.add_argument("--walk-after-s", type=float, default=None, help="default 30")
    p.add_argument("--gnss-rate-hz", type=float, default=None, help="default 5")
    p.add_argument("--accel-fs-g", type=int, choices=ACCEL_FULL_SCALES_G, default=None)
    p.add_argument(
        "--gyro-fs-dps", type=int, choices=GYRO_FULL_SCALES_DPS, default=None
    )
    p.add_argument("--serial", default=None, help="suit serial (default SUIT-0001)")
    p.add_argument("--start-utc", default=None, help="ISO 8601 start of the first ride")
    p.add_argument("--no-clock", action="store_true", help="suit clock unset")
    p.add_argument("--counter-start-us", type=int, default=None, help="u32 start")
    p.add_argument("--no-gnss", action="store_true", help="no GNSS records")
    p.add_argument("--no-mag", action="store_true", help="no magnetometer")
    p.add_argument(
        "--reference",
        choices=("50MB", "250MB"),
        default=None,
        help="the DESIGN.md reference log (fixed seed; no other ride options)",
    )
    p.set_defaults(handler=_run_synth)


def _synth_specs(args: argparse.Namespace) -> list[Any]:
    from firmware_bridge.synth import CRASH_KINDS, RideSpec, reference_spec
    from firmware_bridge.synth.constants import DEFAULT_START_UTC

    ride_options = (
        "seed", "scenario", "riding_s", "rate_hz", "crash", "crash_at_s",
        "walk_before_s", "walk_after_s", "gnss_rate_hz", "accel_fs_g",
        "gyro_fs_dps", "serial", "start_utc", "counter_start_us",
    )  # fmt: skip
    if args.reference is not None:
        given = [
            "--" + name.replace("_", "-")
            for name in ride_options
            if getattr(args, name) is not None
        ]
        flags = {"--no-gnss": args.no_gnss, "--no-mag": args.no_mag}
        flags["--no-clock"] = args.no_clock
        given += [flag for flag, on in flags.items() if on]
        if args.count != 1:
            given.append("--count")
        if given:
            raise UsageError(
                f"--reference makes the fixed reference log; drop {', '.join(given)}"
            )
        return [reference_spec(args.reference)]
    if args.count < 1:
        raise UsageError(f"--count: expected >= 1, found {args.count}")
    if args.no_clock and args.start_utc is not None:
        raise UsageError("--no-clock and --start-utc exclude each other")
    start = DEFAULT_START_UTC
    if args.start_utc is not None:
        try:
            start = datetime.fromisoformat(args.start_utc.replace("Z", "+00:00"))
        except ValueError as exc:
            raise UsageError(f"--start-utc: not ISO 8601: {args.start_utc!r}") from exc
        if start.utcoffset() is None:
            raise UsageError(
                f"--start-utc: needs a time zone (e.g. Z): {args.start_utc!r}"
            )

    seed0 = 1 if args.seed is None else args.seed
    specs = []
    for i in range(args.count):
        seed = seed0 + i
        crash = args.crash
        if crash == "random":
            crash = CRASH_KINDS[np.random.default_rng(seed).integers(len(CRASH_KINDS))]
        options = {
            "sample_rate_hz": args.rate_hz,
            "crash_at_s": args.crash_at_s,
            "walk_before_s": args.walk_before_s,
            "walk_after_s": args.walk_after_s,
            "gnss_rate_hz": args.gnss_rate_hz,
            "accel_full_scale_g": args.accel_fs_g,
            "gyro_full_scale_dps": args.gyro_fs_dps,
            "suit_serial": args.serial,
            "counter_start_us": args.counter_start_us,
        }
        specs.append(
            RideSpec(
                seed=seed,
                scenario=args.scenario or "mixed",
                riding_s=600.0 if args.riding_s is None else args.riding_s,
                crash=crash,
                with_gnss=not args.no_gnss,
                with_mag=not args.no_mag,
                start_utc=None if args.no_clock else start + timedelta(days=i),
                **{k: v for k, v in options.items() if v is not None},
            )
        )
    return specs


def _progress(
    total: int, label: str
) -> tuple[Callable[[int, int], None], Callable[[], None]]:
    """Return (update, close) of a tqdm bar on a terminal, no-ops otherwise."""
    if not sys.stderr.isatty():
        return (lambda done, _total: None), (lambda: None)
    try:
        from tqdm import tqdm
    except ImportError:
        return (lambda done, _total: None), (lambda: None)
    bar = tqdm(total=total, unit="sample", unit_scale=True, desc=label, leave=False)

    def update(done: int, _total: int) -> None:
        bar.update(done - bar.n)

    return update, bar.close


def _run_synth(args: argparse.Namespace, out: TextIO) -> int:
    from firmware_bridge.synth import SynthSpecError, write_ride
    from firmware_bridge.synth.ride import plan_ride
    from firmware_bridge.synth.truth import truth_path

    specs = _synth_specs(args)
    try:
        plans = [plan_ride(spec) for spec in specs]
    except SynthSpecError as exc:
        raise UsageError(str(exc)) from exc
    try:
        args.out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(
            f"{args.out}: cannot create the output folder: {exc}"
        ) from exc

    for spec, plan in zip(specs, plans, strict=True):
        path = args.out / f"{plan.header.log_id}.slog"
        update, close = _progress(plan.n_samples, f"seed {spec.seed}")
        try:
            truth = write_ride(spec, path, on_progress=update)
        except OSError as exc:
            raise OutputError(f"{path}: cannot write: {exc}") from exc
        finally:
            close()
        crash = "no crash"
        if truth.crash_events:
            event = truth.crash_events[0]
            crash = (
                f"crash {event.kind}, impact at {event.t_offset_s:.3f} s, "
                f"{event.peak_g:.1f} g"
            )
        print(
            f"wrote {path} (seed {spec.seed}, {spec.scenario}, "
            f"{truth.samples} samples, {truth.duration_s:.1f} s, "
            f"{path.stat().st_size / 1e6:.1f} MB, {crash}); "
            f"truth {truth_path(path)}",
            file=out,
        )
    return EXIT_OK


# decode --------------------------------------------------------------------


def _register_decode(sub: Any) -> None:
    p = sub.add_parser(
        "decode",
        help="decode a suit log to CSV or print a summary",
        description="Decode a suit log. With --out, write the IMU samples in "
        "physical units to CSV (events and GNSS fixes, if any, to "
        "<stem>.events.csv and <stem>.gnss.csv beside it); without, print the "
        "header and a summary. t_s is seconds since the first sample, with "
        "the u32 microsecond counter unwrapped.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("log", type=Path, help="suit log file")
    p.add_argument("--out", type=Path, default=None, help="CSV file to write")
    p.set_defaults(handler=_run_decode)


class _Unwrapper:
    """Unwrap the suit's u32 microsecond counter into a monotonic count."""

    def __init__(self) -> None:
        self.first: int | None = None
        self.last_raw = 0
        self.last_full = 0
        self.wraps = 0

    def imu(self, t_us: npt.NDArray[np.uint32]) -> npt.NDArray[np.int64]:
        """Return unwrapped microseconds since the first sample."""
        raw = t_us.astype(np.int64)
        if self.first is None:
            self.first = int(raw[0])
            self.last_raw = self.first
            self.last_full = self.first
        steps = np.diff(np.concatenate([[self.last_raw], raw]))
        wrapped = steps < -(_U32 // 2)
        self.wraps += int(np.count_nonzero(wrapped))
        full = self.last_full + np.cumsum(steps + wrapped * _U32)
        self.last_raw, self.last_full = int(raw[-1]), int(full[-1])
        return full - self.first

    def side(self, t_us: npt.NDArray[np.uint32]) -> npt.NDArray[np.int64]:
        """Return unwrapped microseconds of records near the last IMU sample."""
        delta = (t_us.astype(np.int64) - self.last_raw + _U32 // 2) % _U32 - _U32 // 2
        return self.last_full + delta - (self.first or 0)


class _CsvSink:
    """Write rows to ``<path>.partial`` in batches (pyarrow when present).

    ``close(keep=True)`` renames the file to ``path``; ``close(keep=False)``
    removes it, so a failed decode leaves no half-written CSV behind.
    """

    def __init__(
        self, path: Path, columns: Sequence[str], decimals: Sequence[int]
    ) -> None:
        self.path = path
        self.partial = path.with_name(path.name + ".partial")
        self.columns = list(columns)
        self.decimals = list(decimals)
        self._parts: list[npt.NDArray[np.float64]] = []
        self._rows = 0
        self.rows_written = 0
        self._stream = open(self.partial, "wb")  # noqa: SIM115 - closed in close()
        self._stream.write((",".join(self.columns) + "\n").encode())

    def add(self, values: npt.NDArray[np.float64]) -> None:
        self._parts.append(values)
        self._rows += len(values)
        if self._rows >= _CSV_BATCH_ROWS:
            self.flush()

    def flush(self) -> None:
        if not self._parts:
            return
        values = np.concatenate(self._parts)
        self._parts, self._rows = [], 0
        try:
            import pyarrow as pa
            import pyarrow.csv as pacsv
        except ImportError:
            fmt = ",".join(f"%.{d}f" for d in self.decimals)
            np.savetxt(self._stream, values, fmt=fmt)
        else:
            arrays = []
            for col, digits in enumerate(self.decimals):
                column = values[:, col]
                if digits == 0:
                    arrays.append(pa.array(column.astype(np.int64)))
                else:
                    arrays.append(pa.array(np.round(column, digits)))
            table = pa.Table.from_arrays(arrays, names=self.columns)
            options = pacsv.WriteOptions(include_header=False)
            pacsv.write_csv(table, self._stream, write_options=options)
        self.rows_written += len(values)

    def close(self, keep: bool) -> None:
        try:
            if keep:
                self.flush()
        finally:
            self._stream.close()
            if keep:
                self.partial.replace(self.path)
            else:
                self.partial.unlink(missing_ok=True)


def _open_log(path: Path) -> Any:
    try:
        return open(path, "rb")
    except OSError as exc:
        raise InputFileError(f"{path}: cannot open: {exc.strerror or exc}") from exc


_EVENT_COLUMNS = (("t_s", 6), ("t_us", 0), ("kind", 0), ("value", 0))
_GNSS_COLUMNS = (
    ("t_s", 6), ("t_us", 0), ("lat_deg", 7), ("lon_deg", 7), ("alt_m", 3),
    ("speed_m_s", 3), ("heading_deg", 2), ("fix", 0), ("satellites", 0),
)  # fmt: skip


def _imu_columns(header: LogHeader) -> tuple[tuple[str, int], ...]:
    columns = [("t_s", 6), ("t_us", 0)]
    columns += [(f"acc_{axis}_g", 5) for axis in "xyz"]
    columns += [(f"gyr_{axis}_dps", 3) for axis in "xyz"]
    if header.has_mag:
        columns += [(f"mag_{axis}_ut", 3) for axis in "xyz"]
    return tuple(columns)


def _imu_rows(header: LogHeader, r: npt.NDArray[np.void], clock: _Unwrapper) -> Any:
    cols = [clock.imu(r["t_us"]) / 1e6, r["t_us"].astype(np.float64)]
    cols += [*raw_to_physical(r["acc"], header.accel_full_scale_g).T]
    cols += [*raw_to_physical(r["gyr"], header.gyro_full_scale_dps).T]
    if header.has_mag and header.mag_full_scale_ut:
        cols += [*raw_to_physical(r["mag"], header.mag_full_scale_ut).T]
    return np.column_stack(cols)


def _event_rows(r: npt.NDArray[np.void], clock: _Unwrapper) -> Any:
    return np.column_stack(
        [clock.side(r["t_us"]) / 1e6, r["t_us"], r["kind"], r["value"]]
    )


def _gnss_rows(r: npt.NDArray[np.void], clock: _Unwrapper) -> Any:
    return np.column_stack(
        [
            clock.side(r["t_us"]) / 1e6,
            r["t_us"],
            r["lat_e7"] / 1e7,
            r["lon_e7"] / 1e7,
            r["alt_mm"] / 1e3,
            r["speed_mm_s"] / 1e3,
            r["heading_cdeg"] / 100,
            r["fix"],
            r["satellites"],
        ]
    )


def _decode_to_csv(path: Path, out_path: Path, out: TextIO) -> None:
    stem = out_path.with_suffix("") if out_path.suffix == ".csv" else out_path
    targets = {
        BlockType.EVENT: (Path(f"{stem}.events.csv"), _EVENT_COLUMNS, _event_rows),
        BlockType.GNSS: (Path(f"{stem}.gnss.csv"), _GNSS_COLUMNS, _gnss_rows),
    }
    sinks: dict[BlockType, _CsvSink] = {}

    def open_sink(target: Path, columns: Sequence[tuple[str, int]]) -> _CsvSink:
        names, decimals = zip(*columns, strict=True)
        try:
            return _CsvSink(target, names, decimals)
        except OSError as exc:
            raise OutputError(f"{target}: cannot write: {exc.strerror or exc}") from exc

    with _open_log(path) as stream:
        reader = LogReader(stream, source=str(path))
        clock = _Unwrapper()
        try:
            sinks[BlockType.IMU] = open_sink(out_path, _imu_columns(reader.header))
            for block in reader.blocks():
                if block.kind == BlockType.IMU:
                    rows = _imu_rows(reader.header, block.records, clock)
                else:
                    target, columns, make_rows = targets[block.kind]
                    if block.kind not in sinks:
                        sinks[block.kind] = open_sink(target, columns)
                    rows = make_rows(block.records, clock)
                sinks[block.kind].add(rows)
            for sink in sinks.values():
                sink.close(keep=True)
        except OSError as exc:
            raise OutputError(f"{out_path}: cannot write: {exc}") from exc
        finally:
            for sink in sinks.values():
                if sink.partial.exists():
                    sink.close(keep=False)
    for sink in sinks.values():
        print(f"wrote {sink.path} ({sink.rows_written} rows)", file=out)


def _summarise(path: Path, out: TextIO) -> None:
    with _open_log(path) as stream:
        reader = LogReader(stream, source=str(path))
        h = reader.header
        clock = _Unwrapper()
        counts = {kind: 0 for kind in BlockType}
        samples = saturated = gnss = fixed = 0
        events: list[tuple[float, str, int]] = []
        last_rel_us = 0
        for block in reader.blocks():
            counts[block.kind] += 1
            r = block.records
            if block.kind == BlockType.IMU:
                samples += len(r)
                last_rel_us = int(clock.imu(r["t_us"])[-1])
                limits = (r["acc"] == -32768) | (r["acc"] == 32767)
                limits |= (r["gyr"] == -32768) | (r["gyr"] == 32767)
                saturated += int(np.count_nonzero(limits.any(axis=1)))
            elif block.kind == BlockType.EVENT:
                for rel, kind, value in zip(
                    clock.side(r["t_us"]), r["kind"], r["value"], strict=True
                ):
                    try:
                        name = EventKind(int(kind)).name
                    except ValueError:
                        name = f"kind {int(kind)}"
                    events.append((rel / 1e6, name, int(value)))
            else:
                gnss += len(r)
                fixed += int(np.count_nonzero(r["fix"] > 0))
    start = h.start_utc.isoformat() if h.start_utc else "unset (relative time only)"
    lines = [
        f"file:            {path} ({path.stat().st_size} bytes)",
        f"suit serial:     {h.suit_serial}",
        f"firmware:        {h.firmware_version}",
        f"log id:          {h.log_id}",
        f"start (UTC):     {start}",
        f"counter start:   {h.counter_start_us} us",
        f"sample rate:     {h.sample_rate_hz:g} Hz",
        f"full scales:     accel {h.accel_full_scale_g} g, "
        f"gyro {h.gyro_full_scale_dps} dps"
        + (f", mag {h.mag_full_scale_ut} uT" if h.mag_full_scale_ut else ""),
        f"channels:        {h.channels!r}",
        f"samples:         {samples} ({last_rel_us / 1e6:.3f} s, "
        f"{clock.wraps} counter wraps, {saturated} saturated)",
        f"blocks:          imu {counts[BlockType.IMU]}, "
        f"event {counts[BlockType.EVENT]}, gnss {counts[BlockType.GNSS]}, "
        f"unknown skipped {reader.skipped_blocks}",
        f"gnss records:    {gnss} ({fixed} with a fix)",
        f"events:          {len(events)}",
    ]
    lines += [f"  {t:12.6f} s  {name} (value {value})" for t, name, value in events]
    print("\n".join(lines), file=out)


def _run_decode(args: argparse.Namespace, out: TextIO) -> int:
    try:
        if args.out is None:
            _summarise(args.log, out)
        else:
            _decode_to_csv(args.log, args.out, out)
    except LogFormatError as exc:
        raise InputFileError(str(exc)) from exc
    return EXIT_OK


# main ----------------------------------------------------------------------

COMMANDS: tuple[Callable[[Any], None], ...] = (
    _register_synth,
    _register_decode,
    register_emulate,
)


def build_parser() -> argparse.ArgumentParser:
    """Return the parser with every subcommand of ``COMMANDS`` registered."""
    parser = argparse.ArgumentParser(
        prog="firmware-bridge",
        description="Suit-side tools: synthesise, decode and emulate suit logs.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "-v", "--verbose", action="count", default=0, help="more logging"
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for register in COMMANDS:
        register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; return the exit code (see the module docstring)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    level = logging.WARNING - 10 * min(args.verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(args.handler(args, sys.stdout))
    except CliError as exc:
        print(f"firmware-bridge {args.command}: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(f"firmware-bridge {args.command}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
