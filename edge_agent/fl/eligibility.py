"""Whether this gateway may take part in a federated round right now.

A gateway trains only while it is idle, online and on external power (the
training gate of :mod:`edge_agent.service.gating`, whose power reading this
reuses) and holds enough labelled windows. Online is a given here: the
question arrives from the SuperLink. Idle is what the agent last wrote in
``agent-state.json`` (``activity = idle``); a node without an agent
(``agent-workdir`` empty) counts as idle.

The agent writes its state file after each cycle, so "idle" is as fresh as
the last cycle (at most ``[ble] idle_poll_s`` old while the agent idles);
a cycle that starts after the check is not seen until the next round.

Nothing here raises: an unreadable state file makes the gateway ineligible
with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass

from edge_agent.config import GatingConfig
from edge_agent.service.gating import Conditions, UplinkState, read_power_state
from edge_agent.service.state import read_agent_state

from .settings import NodeSettings
from .store import StoreCounts

__all__ = ["Eligibility", "check_eligibility"]

REASON_TOO_FEW_WINDOWS = "too few labelled windows"


@dataclass(frozen=True)
class Eligibility:
    """The answer to "may this gateway train now?" and why not."""

    eligible: bool
    reason: str
    counts: StoreCounts


def _agent_idle(settings: NodeSettings) -> tuple[bool, str]:
    if settings.agent_workdir is None:
        return True, "no agent on this node"
    try:
        state = read_agent_state(settings.agent_workdir)
    except ValueError as exc:
        return False, f"agent state unreadable: {exc}"
    if state is None:
        return False, f"no agent state in {settings.agent_workdir}"
    activity = str(state.get("activity", ""))
    return activity == "idle", f"agent {activity or 'activity unknown'}"


def check_eligibility(settings: NodeSettings, counts: StoreCounts) -> Eligibility:
    """Return whether the gateway may train now, with the reason if not."""
    rules = GatingConfig(
        training_requires_idle=settings.require_idle,
        training_requires_external_power=settings.require_external_power,
        training_requires_uplink=False,
        power_supply_root=str(settings.power_supply_root),
    )
    idle, idle_detail = _agent_idle(settings)
    power = read_power_state(settings.power_supply_root)
    conditions = Conditions(power, UplinkState(True, None, "SuperLink reachable"))
    gate = conditions.training_gate(rules, idle=idle)
    if not gate.allowed:
        detail = idle_detail if gate.reason and "idle" in gate.reason else power.detail
        return Eligibility(False, f"{gate.reason} ({detail})", counts)
    if (
        counts.labelled < settings.min_windows
        or counts.positives < settings.min_positives
    ):
        return Eligibility(
            False,
            f"{REASON_TOO_FEW_WINDOWS}: {counts.positives} crash and "
            f"{counts.negatives} normal, need {settings.min_windows} with "
            f"{settings.min_positives} crash",
            counts,
        )
    return Eligibility(True, f"eligible ({power.detail}; {idle_detail})", counts)
