"""Line coverage of the project reached by a corpus (stdlib ``trace``).

libFuzzer's ``cov:`` counts instrumented edges, which says little to a
reader; this replays a corpus through the harness body, uninstrumented, and
reports per project file the function-body lines executed, with the ones
never reached, so a report can say which checks the fuzzer got to.
"""

from __future__ import annotations

import inspect
import trace
import types
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

__all__ = ["FileCoverage", "executable_lines", "line_coverage"]

REPO_ROOT = Path(__file__).resolve().parents[1]
# Packages reported; the harness (fuzz/) and third-party code are left out.
PROJECT_PACKAGES = ("firmware_bridge", "edge_agent")


@dataclass(frozen=True)
class FileCoverage:
    """Executed and missed function-body lines of one source file."""

    path: str
    executed: int
    executable: int
    missed: tuple[int, ...]

    @property
    def percent(self) -> float:
        """Return executed lines as a percentage of executable ones."""
        return 100.0 * self.executed / self.executable if self.executable else 0.0


def executable_lines(path: Path) -> set[int]:
    """Return the lines of every function body in ``path``.

    Module and class bodies run at import, before any input is replayed, so
    only code objects of functions (``CO_OPTIMIZED``) count, without the
    ``def`` line itself.
    """
    code = compile(path.read_text(encoding="utf-8"), str(path), "exec")
    lines: set[int] = set()
    stack = [code]
    while stack:
        current = stack.pop()
        if current.co_flags & inspect.CO_OPTIMIZED:
            body = {line for _, _, line in current.co_lines() if line is not None}
            # The ``def`` line carries only the frame set-up, which ``trace``
            # never reports; a one-line lambda keeps it.
            if len(body) > 1:
                body.discard(current.co_firstlineno)
            lines |= body
        stack.extend(c for c in current.co_consts if isinstance(c, types.CodeType))
    return lines


def _project_file(filename: str) -> Path | None:
    path = Path(filename).resolve()
    try:
        relative = path.relative_to(REPO_ROOT)
    except ValueError:
        return None
    return path if relative.parts[0] in PROJECT_PACKAGES else None


def line_coverage(
    body: Callable[[bytes], None], inputs: Iterable[bytes]
) -> list[FileCoverage]:
    """Replay ``inputs`` through ``body`` and return coverage per project file.

    Exceptions from ``body`` are left to the caller (a corpus replays clean).
    """
    tracer = trace.Trace(count=1, trace=0)
    for data in inputs:
        tracer.runfunc(body, data)
    hit: dict[Path, set[int]] = {}
    for (filename, line), _count in tracer.results().counts.items():
        path = _project_file(filename)
        if path is not None:
            hit.setdefault(path, set()).add(line)
    report = []
    for path in sorted(hit):
        lines = executable_lines(path)
        executed = hit[path] & lines
        report.append(
            FileCoverage(
                str(path.relative_to(REPO_ROOT)),
                len(executed),
                len(lines),
                tuple(sorted(lines - executed)),
            )
        )
    return report
