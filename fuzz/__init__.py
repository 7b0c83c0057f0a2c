"""Coverage-guided fuzzing of the suit log decoder, BLE parser and log source.

``fuzz.targets`` holds one harness per target: a ``one_input(data)`` body that
feeds arbitrary bytes to the project's parsers and lets through only the
errors their contracts allow, plus a ``seeds()`` corpus built with the
project's own writers and encoders. ``fuzz.run`` drives a harness under
atheris (libFuzzer); ``tests/fuzz_regressions`` runs the same bodies on the
seeds and on fixed-seed mutations so CI exercises them without long runs.
See ``fuzz/README.md`` for the commands.
"""

__all__ = ["LAUNCHER_ENV", "SUPPRESS_ENV"]

# libFuzzer re-runs its own argv[0] (for -minimize_crash); ``fuzz.run`` names
# an executable launcher script in this environment variable, because
# ``fuzz.atheris_main`` runs as ``python -m`` and is not executable itself.
LAUNCHER_ENV = "FUZZ_LAUNCHER"
# Comma-separated names of known findings a harness lets pass, so a run can
# look for the next bug while a fix is pending (``fuzz.run --suppress``).
SUPPRESS_ENV = "FUZZ_SUPPRESS"
