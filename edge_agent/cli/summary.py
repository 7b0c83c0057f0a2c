"""Plain-text tables the CLI prints for people."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

__all__ = ["RIDE_COLUMNS", "crash_text", "format_table", "ride_row"]

RIDE_COLUMNS = (
    "log",
    "duration",
    "distance",
    "lean L/R",
    "turns L/R",
    "accel/decel",
    "crash",
)


def _num(value: Any, fmt: str, unit: str = "") -> str:
    if value is None:
        return "-"
    return f"{value:{fmt}}{unit}"


def crash_text(crash: Mapping[str, Any] | None) -> str:
    """Return the crash verdict in a few words: yes at t, no, or why not judged."""
    if not crash:
        return "-"
    detected = crash.get("detected")
    if detected is None:
        return f"not judged ({crash.get('reason', 'no reason given')})"
    if not detected:
        return "no"
    events = crash.get("events") or []
    times = ", ".join(
        f"{event['t_offset_s']:.2f} s ({event.get('peak_g', 0):.1f} g)"
        for event in events
    )
    return f"YES at {times}" if times else "YES"


def ride_row(log_id: str, analytics: Mapping[str, Any]) -> list[str]:
    """Return one summary row of ride analytics (``ride-analytics/1``)."""
    return [
        log_id[:8],
        _num(analytics.get("duration_s"), ".0f", " s"),
        _num(analytics.get("distance_km"), ".2f", " km"),
        f"{_num(analytics.get('max_lean_left_deg'), '.1f')}/"
        f"{_num(analytics.get('max_lean_right_deg'), '.1f')} deg",
        f"{_num(analytics.get('turns_left'), 'd')}/"
        f"{_num(analytics.get('turns_right'), 'd')}",
        f"{_num(analytics.get('max_accel_g'), '.2f')}/"
        f"{_num(analytics.get('max_decel_g'), '.2f')} g",
        crash_text(analytics.get("crash")),
    ]


def format_table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """Return rows as a left-aligned text table with a rule under the header."""
    rows = [list(map(str, row)) for row in rows]
    widths = [len(h) for h in header]
    for row in rows:
        widths = [max(w, len(cell)) for w, cell in zip(widths, row, strict=False)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=False))
        for row in rows
    ]
    return "\n".join(line.rstrip() for line in lines)
