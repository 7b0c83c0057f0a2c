"""The gateway's federated-learning settings, read from the SuperNode's node config.

The SuperNode is started by the gateway's service configuration
(``deploy/systemd/edge-agent-supernode.service``) with ``--node-config``;
the ClientApp reads these keys from ``context.node_config``:

========================= ======= =============================================
key                       default meaning
========================= ======= =============================================
``gateway-id``            (none)  the gateway's id, for log lines
``window-store``          (none)  path of the labelled-window store (SQLite)
``model``                 (none)  the model the agent runs: the model manager's
                                  ``<models>/active/model.tflite`` (follows
                                  updates); absent: the shipped model
``agent-workdir``         ``""``  the agent's workdir (``agent-state.json``);
                                  empty: no agent on this node, counts as idle
``power-supply-root``     sysfs   ``/sys/class/power_supply``
``min-windows``           200     labelled windows needed to take part
``min-positives``         1       crash windows needed to take part
``cpu-budget-s``          60      CPU seconds one round may spend training
``holdout-fraction``      0.2     share of logs kept out of training for
                                  the evaluation messages
``require-idle``          true    take part only while the agent is idle
``require-external-power`` true   take part only on external power
========================= ======= =============================================

Errors: :class:`~edge_agent.fl.errors.NodeConfigError` naming the key.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from .errors import NodeConfigError

__all__ = ["DEFAULT_POWER_SUPPLY_ROOT", "NodeSettings"]

DEFAULT_POWER_SUPPLY_ROOT = "/sys/class/power_supply"
# 200 windows: with one normal window kept per 4 s that is a few rides, the
# least that gives a gradient worth sending.
_DEFAULT_MIN_WINDOWS = 200
# One minute of CPU per round keeps a 1 GB ARM gateway responsive; NumPy
# head training on 4000 windows needs well under a second of it.
_DEFAULT_CPU_BUDGET_S = 60.0
_DEFAULT_HOLDOUT_FRACTION = 0.2

NodeConfigValue = str | int | float | bool


def _text(config: Mapping[str, object], key: str, default: str | None = None) -> str:
    value = config.get(key, default)
    if not isinstance(value, str) or (default is None and not value):
        raise NodeConfigError(
            f"--node-config key {key!r}: expected a non-empty string, found {value!r}"
        )
    return value


def _number(config: Mapping[str, object], key: str, default: float) -> float:
    value = config.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise NodeConfigError(
            f"--node-config key {key!r}: expected a number, found {value!r}"
        )
    return float(value)


def _flag(config: Mapping[str, object], key: str, default: bool) -> bool:
    value = config.get(key, default)
    if not isinstance(value, bool):
        raise NodeConfigError(
            f"--node-config key {key!r}: expected true or false, found {value!r}"
        )
    return value


@dataclass(frozen=True)
class NodeSettings:
    """What the ClientApp needs to know about its gateway."""

    gateway_id: str
    window_store: Path
    model: Path
    agent_workdir: Path | None
    power_supply_root: Path
    min_windows: int
    min_positives: int
    cpu_budget_s: float
    holdout_fraction: float
    require_idle: bool
    require_external_power: bool

    @classmethod
    def from_node_config(cls, config: Mapping[str, object]) -> NodeSettings:
        """Read the settings from ``context.node_config``.

        Raises:
            NodeConfigError: a key is missing, mistyped or out of range.
        """
        workdir = _text(config, "agent-workdir", "")
        settings = cls(
            gateway_id=_text(config, "gateway-id"),
            window_store=Path(_text(config, "window-store")),
            model=Path(_text(config, "model")),
            agent_workdir=Path(workdir) if workdir else None,
            power_supply_root=Path(
                _text(config, "power-supply-root", DEFAULT_POWER_SUPPLY_ROOT)
            ),
            min_windows=int(_number(config, "min-windows", _DEFAULT_MIN_WINDOWS)),
            min_positives=int(_number(config, "min-positives", 1)),
            cpu_budget_s=_number(config, "cpu-budget-s", _DEFAULT_CPU_BUDGET_S),
            holdout_fraction=_number(
                config, "holdout-fraction", _DEFAULT_HOLDOUT_FRACTION
            ),
            require_idle=_flag(config, "require-idle", True),
            require_external_power=_flag(config, "require-external-power", True),
        )
        if settings.min_windows < 1 or settings.min_positives < 0:
            raise NodeConfigError(
                "--node-config keys 'min-windows' (>= 1) and 'min-positives' (>= 0) "
                f"out of range: {settings.min_windows}, {settings.min_positives}"
            )
        if not 0.0 <= settings.holdout_fraction < 1.0:
            raise NodeConfigError(
                "--node-config key 'holdout-fraction': expected 0 <= x < 1, "
                f"found {settings.holdout_fraction}"
            )
        if settings.cpu_budget_s <= 0:
            raise NodeConfigError(
                "--node-config key 'cpu-budget-s': expected > 0, "
                f"found {settings.cpu_budget_s}"
            )
        return settings
