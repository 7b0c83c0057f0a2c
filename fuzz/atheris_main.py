"""Run one fuzz target under atheris; ``fuzz.run`` starts this as a process.

Usage (what ``fuzz.run`` executes)::

    python -m fuzz.atheris_main TARGET [libFuzzer flags and corpus dirs]

The target module is imported inside ``atheris.instrument_imports`` limited to
the project's packages, so coverage and comparison feedback come from the
decoder, the protocol parsers and the processing layer, not from NumPy or
the harness. Every project log call is formatted (``strict_logging``), so a
log line whose arguments do not fit its format string is a crash too.
"""

from __future__ import annotations

import os
import sys

import atheris

from fuzz import LAUNCHER_ENV
from fuzz.targets import load_target
from fuzz.targets._common import strict_logging

__all__ = ["main"]

# Packages whose bytecode atheris instruments (top-level names).
INSTRUMENTED_PACKAGES = ("firmware_bridge", "edge_agent")


def main(argv: list[str]) -> None:
    """Instrument the project, load ``argv[1]`` and hand over to libFuzzer."""
    if len(argv) < 2:
        raise SystemExit("usage: python -m fuzz.atheris_main TARGET [libFuzzer args]")
    with atheris.instrument_imports(include=list(INSTRUMENTED_PACKAGES)):
        target = load_target(argv[1])
    with strict_logging():
        program = os.environ.get(LAUNCHER_ENV, argv[0])
        atheris.Setup([program, *argv[2:]], target.one_input)
        atheris.Fuzz()


if __name__ == "__main__":
    main(sys.argv)
