"""Print event-level figures and check them against the issue's targets.

Targets (held-out synthesised data): crash recall at least 99 %, at most one
false alarm per 1000 h of riding and per 1000 h off the bike, crash time
within 0.5 s for at least 95 % of detected crashes; an int8 model within
0.02 of the float model on at least 99.9 % of windows.
"""

from __future__ import annotations

from typing import Any, TextIO

__all__ = ["TARGETS", "check_targets", "print_figures"]

TARGETS = {
    "recall": 0.99,
    "false_alarms_per_1000h_riding": 1.0,
    "false_alarms_per_1000h_offbike": 1.0,
    "crash_time_within_0_5_s": 0.95,
    "agreement_within_0_02": 0.999,
}


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.2f} %"


def _rate(value: float | None) -> str:
    return "no hours" if value is None else f"{value:.2f}/1000 h"


def _group_order(name: str) -> tuple[int, float, str]:
    """Sort numeric group names (native rates) by value, the rest by name."""
    try:
        return (0, float(name), name)
    except ValueError:
        return (1, 0.0, name)


def _line(name: str, g: dict[str, Any]) -> str:
    crashes = (
        f"{g['detected']}/{g['crashes']} crashes ({_pct(g['recall'])}), "
        f"time within 0.5 s {_pct(g['crash_time_within_0_5_s'])}"
        if g["crashes"]
        else "no crashes"
    )
    return (
        f"  {name:<12} {crashes}; false alarms {g['false_alarms_riding']} in "
        f"{g['riding_h']:.1f} h riding ({_rate(g['false_alarms_per_1000h_riding'])}),"
        f" {g['false_alarms_offbike']} in {g['offbike_h']:.1f} h off-bike "
        f"({_rate(g['false_alarms_per_1000h_offbike'])})"
    )


def check_targets(
    total: dict[str, Any], agreement: float | None = None
) -> dict[str, bool]:
    """Return which targets the figures meet (None figures fail)."""

    def at_least(value: float | None, target: float) -> bool:
        return value is not None and value >= target

    def at_most(value: float | None, target: float) -> bool:
        return value is not None and value <= target

    checks = {
        "recall": at_least(total["recall"], TARGETS["recall"]),
        "false_alarms_per_1000h_riding": at_most(
            total["false_alarms_per_1000h_riding"],
            TARGETS["false_alarms_per_1000h_riding"],
        ),
        "false_alarms_per_1000h_offbike": at_most(
            total["false_alarms_per_1000h_offbike"],
            TARGETS["false_alarms_per_1000h_offbike"],
        ),
        "crash_time_within_0_5_s": at_least(
            total["crash_time_within_0_5_s"], TARGETS["crash_time_within_0_5_s"]
        ),
    }
    if agreement is not None:
        checks["agreement_within_0_02"] = at_least(
            agreement, TARGETS["agreement_within_0_02"]
        )
    return checks


def print_figures(figures: dict[str, Any], out: TextIO) -> None:
    """Print an ``Assessment.to_dict()`` for people."""
    print(
        f"held-out: {figures['recordings']} recordings, {figures['windows']} windows",
        file=out,
    )
    agreement = figures.get("agreement_within_0_02")
    if agreement is not None:
        print(f"models agree within 0.02 on {_pct(agreement)} of windows", file=out)
    for name, model in figures["models"].items():
        rule = model["rule"]
        print(
            f"model {name}: probability >= {rule['threshold']:.4f} for "
            f"{rule['min_run_windows']} window(s), alarms within "
            f"{rule['merge_gap_s']:g} s are one event",
            file=out,
        )
        print(_line("total", model["total"]), file=out)
        for key in ("scenario", "crash", "native_rate_hz"):
            print(f" by {key}:", file=out)
            groups = model.get(key, {})
            for group in sorted(groups, key=_group_order):
                print(_line(group, groups[group]), file=out)
        p95 = model["total"]["crash_time_error_p95_s"]
        if p95 is not None:
            print(f"  crash time error p95 {p95:.3f} s", file=out)
        checks = check_targets(model["total"], agreement)
        verdict = ", ".join(f"{k} {'ok' if v else 'MISSED'}" for k, v in checks.items())
        print(f"  targets: {verdict}", file=out)
