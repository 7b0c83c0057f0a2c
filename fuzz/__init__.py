"""Coverage-guided fuzzing of the suit log decoder, BLE parser and log source.

``fuzz.targets`` holds one harness per target: a ``one_input(data)`` body that
feeds arbitrary bytes to the project's parsers and lets through only the
errors their contracts allow, plus a ``seeds()`` corpus built with the
project's own writers and encoders. ``fuzz.run`` drives a harness under
atheris (libFuzzer); ``tests/fuzz_regressions`` runs the same bodies on the
seeds and on fixed-seed mutations so CI exercises them without long runs.
See ``fuzz/README.md`` for the commands.
"""
