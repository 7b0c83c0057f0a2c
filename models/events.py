"""Event-level evaluation: window scores -> crash events -> figures by scenario.

Grouping rule (what one alarm is):

1. an *alarm run* is a run of at least ``min_run_windows`` consecutive
   windows whose probability is at or above the threshold;
2. alarm runs whose windows start at most ``MERGE_GAP_S`` apart are one
   *event* (a tumbling crash can dip below the threshold for a window or two);
   1 and 2 are ``evaluation.alarm_spans``, shared with the gateway and the
   cloud's publication gate;
3. an event's time is the largest acceleration magnitude, per 10 ms cell of
   the native stream, within its windows' span (as the gateway locates it).

Matching: an event *detects* a true crash when its span (first window start
to last window end) overlaps ``[impact - MATCH_BEFORE_S, impact +
MATCH_AFTER_S]``; the crash-time error is |event time - impact| of the first
such event. Events starting after a crash's impact that do not match it are
ignored (the rider has crashed; getting up is not a new alarm). Every other
event is a *false alarm*, counted as riding when the
rider was on the bike at its first window, else as off-bike. Hours: riding
is time on the bike before any crash; off-bike is the rest before any crash
(nothing after an impact counts, so off-bike rates err high).

NumPy only.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from . import contract
from .evaluation import MERGE_GAP_S, alarm_spans
from .metadata import DecisionRule

__all__ = [
    "CRASH_TIME_TOLERANCE_S",
    "MATCH_AFTER_S",
    "MATCH_BEFORE_S",
    "MERGE_GAP_S",
    "Event",
    "Outcome",
    "RecordingFacts",
    "ScoredRecording",
    "Tally",
    "group_events",
    "score_recording",
]

# An event within this span around the impact is the crash.
MATCH_BEFORE_S = contract.WINDOW_S
MATCH_AFTER_S = 10.0
# The target: crash time within 0.5 s.
CRASH_TIME_TOLERANCE_S = 0.5


@dataclass(frozen=True)
class Event:
    """One grouped event: window range, span, time, top probability and peak."""

    first: int
    last: int
    start_s: float
    end_s: float
    t_s: float
    probability: float
    peak_g: float


@dataclass(frozen=True)
class ScoredRecording:
    """One recording's window probabilities and what truly happened."""

    scenario: str
    crash: str | None
    native_rate_hz: float
    probability: npt.NDArray[np.float32]
    starts_s: npt.NDArray[np.float64]
    on_bike: npt.NDArray[np.bool_]
    impact_s: float | None
    peak_g: npt.NDArray[np.float32]
    riding_s: float
    offbike_s: float


@dataclass(frozen=True)
class RecordingFacts:
    """What a tally needs to know of a recording besides its outcome."""

    scenario: str
    crash: str | None
    native_rate_hz: float
    riding_s: float
    offbike_s: float

    @classmethod
    def of(cls, rec: ScoredRecording) -> RecordingFacts:
        """Return the facts of a scored recording."""
        return cls(
            rec.scenario, rec.crash, rec.native_rate_hz, rec.riding_s, rec.offbike_s
        )


@dataclass(frozen=True)
class Outcome:
    """What the decision rule made of one recording."""

    crash: bool
    detected: bool
    time_error_s: float | None
    false_alarms_riding: int
    false_alarms_offbike: int


def group_events(
    probability: npt.ArrayLike,
    starts_s: npt.NDArray[np.float64],
    peak_g: npt.NDArray[np.float32],
    rule: DecisionRule,
) -> list[Event]:
    """Group alarm windows into events (rule in the module docstring)."""
    p = np.asarray(probability, dtype=np.float32)
    merged = alarm_spans(p, starts_s, rule)
    events = []
    for first, last in merged:
        start_s = float(starts_s[first])
        end_s = float(starts_s[last]) + contract.WINDOW_S
        lo = round(start_s * contract.MODEL_RATE_HZ)
        hi = min(len(peak_g), round(end_s * contract.MODEL_RATE_HZ))
        span = peak_g[lo:hi]
        cell = lo + int(np.argmax(span)) if len(span) else lo
        events.append(
            Event(
                first,
                last,
                start_s,
                end_s,
                # The peak lies somewhere inside its 10 ms cell: the middle.
                (cell + 0.5) / contract.MODEL_RATE_HZ,
                float(p[first : last + 1].max()),
                float(span.max()) if len(span) else 0.0,
            )
        )
    return events


def score_recording(rec: ScoredRecording, rule: DecisionRule) -> Outcome:
    """Match a recording's events to its crash; count false alarms."""
    detected = False
    error: float | None = None
    riding = offbike = 0
    for event in group_events(rec.probability, rec.starts_s, rec.peak_g, rule):
        hit = rec.impact_s is not None and (
            event.start_s <= rec.impact_s + MATCH_AFTER_S
            and event.end_s >= rec.impact_s - MATCH_BEFORE_S
        )
        if not hit and rec.impact_s is not None and event.start_s > rec.impact_s:
            continue  # after the crash: not a new alarm
        if hit and rec.impact_s is not None:
            if not detected:
                error = abs(event.t_s - rec.impact_s)
            detected = True
        elif len(rec.on_bike) and rec.on_bike[event.first]:
            riding += 1
        else:
            offbike += 1
    return Outcome(rec.impact_s is not None, detected, error, riding, offbike)


@dataclass
class _Group:
    crashes: int = 0
    detected: int = 0
    errors_s: list[float] = field(default_factory=list)
    false_alarms_riding: int = 0
    false_alarms_offbike: int = 0
    riding_s: float = 0.0
    offbike_s: float = 0.0
    recordings: int = 0

    def add(self, riding_s: float, offbike_s: float, outcome: Outcome) -> None:
        self.recordings += 1
        self.crashes += int(outcome.crash)
        self.detected += int(outcome.detected)
        if outcome.time_error_s is not None:
            self.errors_s.append(outcome.time_error_s)
        self.false_alarms_riding += outcome.false_alarms_riding
        self.false_alarms_offbike += outcome.false_alarms_offbike
        self.riding_s += riding_s
        self.offbike_s += offbike_s

    def to_dict(self) -> dict[str, Any]:
        riding_h = self.riding_s / 3600.0
        offbike_h = self.offbike_s / 3600.0
        errors = np.asarray(self.errors_s)
        within = (
            float(np.mean(errors <= CRASH_TIME_TOLERANCE_S)) if len(errors) else None
        )
        return {
            "recordings": self.recordings,
            "crashes": self.crashes,
            "detected": self.detected,
            "recall": self.detected / self.crashes if self.crashes else None,
            "riding_h": round(riding_h, 2),
            "false_alarms_riding": self.false_alarms_riding,
            "false_alarms_per_1000h_riding": (
                1000.0 * self.false_alarms_riding / riding_h if riding_h else None
            ),
            "offbike_h": round(offbike_h, 2),
            "false_alarms_offbike": self.false_alarms_offbike,
            "false_alarms_per_1000h_offbike": (
                1000.0 * self.false_alarms_offbike / offbike_h if offbike_h else None
            ),
            "crash_time_within_0_5_s": within,
            "crash_time_error_p50_s": (
                float(np.percentile(errors, 50)) if len(errors) else None
            ),
            "crash_time_error_p95_s": (
                float(np.percentile(errors, 95)) if len(errors) else None
            ),
        }


class Tally:
    """Event figures of one decision rule, overall and by breakdown key."""

    def __init__(self, rule: DecisionRule) -> None:
        self.rule = rule
        self.total = _Group()
        self.by: dict[str, dict[str, _Group]] = defaultdict(lambda: defaultdict(_Group))

    def add(self, rec: ScoredRecording) -> Outcome:
        """Score ``rec`` and add it to the totals and breakdowns."""
        outcome = score_recording(rec, self.rule)
        self.add_outcome(RecordingFacts.of(rec), outcome)
        return outcome

    def add_outcome(self, facts: RecordingFacts, outcome: Outcome) -> None:
        """Add an already scored recording."""
        groups = [
            self.total,
            self.by["scenario"][facts.scenario],
            self.by["native_rate_hz"][f"{facts.native_rate_hz:g}"],
        ]
        if facts.crash is not None:
            groups.append(self.by["crash"][facts.crash])
        for group in groups:
            group.add(facts.riding_s, facts.offbike_s, outcome)

    def add_all(self, recs: Iterable[ScoredRecording]) -> None:
        """Add every recording."""
        for rec in recs:
            self.add(rec)

    def to_dict(self) -> dict[str, Any]:
        """Return the figures as JSON-ready dicts."""
        return {
            "rule": {
                "threshold": self.rule.threshold,
                "min_run_windows": self.rule.min_run_windows,
                "merge_gap_s": MERGE_GAP_S,
            },
            "total": self.total.to_dict(),
            **{
                key: {name: g.to_dict() for name, g in sorted(groups.items())}
                for key, groups in self.by.items()
            },
        }
