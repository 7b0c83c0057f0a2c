"""Read libFuzzer's output into the figures of one run.

libFuzzer prints a status line per event (``#N NEW cov: .. ft: .. corp:
units/size ..``) and, with ``-print_final_stats=1``, ``stat::`` lines at the
end; the last of each wins.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

__all__ = ["RunSummary", "parse_output"]

_STATUS_LINE = re.compile(
    r"^#(?P<execs>\d+)\s+(?P<event>\w+)\s+cov: (?P<cov>\d+) ft: (?P<ft>\d+)"
    r"(?: corp: (?P<corp_units>\d+)/(?P<corp_size>\S+))?"
)
_STAT_LINE = re.compile(r"^stat::(?P<name>\w+):\s+(?P<value>\d+)")


@dataclass
class RunSummary:
    """The figures of one fuzzing run, read from libFuzzer's output."""

    target: str
    seconds_requested: int
    started_utc: str
    wall_seconds: float = 0.0
    executions: int | None = None
    execs_per_second: int | None = None
    coverage_edges: int | None = None
    features: int | None = None
    corpus_units: int | None = None
    corpus_size: str | None = None
    new_units_added: int | None = None
    peak_rss_mb: int | None = None
    slowest_unit_s: int | None = None
    exit_code: int | None = None
    suppressed: list[str] = field(default_factory=list)
    artifacts: list[str] = field(default_factory=list)
    log_path: str = ""
    command: list[str] = field(default_factory=list)

    def line(self) -> str:
        """Return the one-line human summary printed at the end of a run."""
        return (
            f"{self.target}: {self.wall_seconds:.0f} s, "
            f"{self.executions} executions, {self.execs_per_second} exec/s, "
            f"cov {self.coverage_edges}, ft {self.features}, "
            f"corpus {self.corpus_units} units/{self.corpus_size}, "
            f"peak RSS {self.peak_rss_mb} MB, "
            f"{len(self.artifacts)} finding(s)"
            + (f": {', '.join(self.artifacts)}" if self.artifacts else "")
        )


def parse_output(text: str, summary: RunSummary) -> None:
    """Fill ``summary`` from libFuzzer's status and ``stat::`` lines."""
    for line in text.splitlines():
        status = _STATUS_LINE.match(line)
        if status:
            summary.executions = int(status["execs"])
            summary.coverage_edges = int(status["cov"])
            summary.features = int(status["ft"])
            if status["corp_units"]:
                summary.corpus_units = int(status["corp_units"])
                summary.corpus_size = status["corp_size"]
            continue
        stat = _STAT_LINE.match(line)
        if stat:
            value = int(stat["value"])
            name = stat["name"]
            if name == "number_of_executed_units":
                summary.executions = value
            elif name == "average_exec_per_sec":
                summary.execs_per_second = value
            elif name == "new_units_added":
                summary.new_units_added = value
            elif name == "peak_rss_mb":
                summary.peak_rss_mb = value
            elif name == "slowest_unit_time_sec":
                summary.slowest_unit_s = value
