"""The settings of one federated run, read from Flower's run config.

Defaults live in ``pyproject.toml`` under ``[tool.flwr.app.config]``;
``cloud-coordinator fl start`` (or ``flwr run --run-config``) overrides
them per run. Keys:

======================== =============================================================
key                      meaning
======================== =============================================================
``num-server-rounds``    rounds to run
``min-nodes``            quorum: eligible gateways a round needs, and replies it
                         must get, to aggregate
``strategy``             ``fedavg`` (weighted), ``fedprox``, ``trimmed-mean``,
                         ``median`` or ``krum`` (robust against a misbehaving
                         gateway)
``proximal-mu``          FedProx proximal weight (``fedprox`` only)
``trim-beta``            share cut from each tail by ``trimmed-mean``
``dp-noise-multiplier``  > 0 turns on central differential privacy (Flower's
                         server-side fixed clipping wrapper) ...
``dp-clipping-norm``     ... with updates clipped to this L2 norm
``fraction-train``       share of the eligible gateways sampled per round
``round-timeout-s``      per-round deadline for train and evaluate replies
``quorum-wait-s``        how long a round waits for enough eligible gateways
``query-timeout-s``      deadline of the eligibility question
``epochs``, ``learning-rate``, ``l2``, ``class-weight-power``, ``cpu-budget-s``
                         sent to the gateways (see ``edge_agent.fl.training``)
``initial-model``        model metadata JSON whose head starts the run; empty:
                         the shipped model
``catalog``              catalog URL or SQLite path for run and round records;
                         empty: not recorded
``catalog-schema``       PostgreSQL schema of that catalog (``[catalog] schema``)
``run-key``              the catalog's id of this run (``fl start`` sets it)
``out-dir``              folder for the aggregated head (``head-<run-key>.json``)
======================== =============================================================

Errors: :class:`~cloud_coordinator.fl.errors.RunConfigError` naming the key.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from .errors import RunConfigError

__all__ = ["STRATEGIES", "RunSettings"]

STRATEGIES = ("fedavg", "fedprox", "trimmed-mean", "median", "krum")


def _get(config: Mapping[str, object], key: str, default: object) -> object:
    return config.get(key, default)


def _number(config: Mapping[str, object], key: str, default: float) -> float:
    value = _get(config, key, default)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise RunConfigError(f"run config {key!r}: expected a number, found {value!r}")
    if not math.isfinite(value):
        raise RunConfigError(f"run config {key!r}: expected a finite number")
    return float(value)


def _integer(config: Mapping[str, object], key: str, default: int, low: int) -> int:
    value = _number(config, key, default)
    if value != int(value) or value < low:
        raise RunConfigError(
            f"run config {key!r}: expected a whole number >= {low}, found {value}"
        )
    return int(value)


def _text(config: Mapping[str, object], key: str) -> str:
    value = _get(config, key, "")
    if not isinstance(value, str):
        raise RunConfigError(f"run config {key!r}: expected a string, found {value!r}")
    return value


@dataclass(frozen=True)
class RunSettings:
    """One run's settings; see the module docstring for the keys."""

    rounds: int = 3
    min_nodes: int = 2
    strategy: str = "fedavg"
    proximal_mu: float = 0.0
    trim_beta: float = 0.34
    dp_noise_multiplier: float = 0.0
    dp_clipping_norm: float = 0.0
    fraction_train: float = 1.0
    round_timeout_s: float = 600.0
    quorum_wait_s: float = 300.0
    query_timeout_s: float = 30.0
    epochs: int = 300
    learning_rate: float = 0.05
    l2: float = 1e-4
    class_weight_power: float = 0.5
    cpu_budget_s: float = 60.0
    initial_model: str = ""
    catalog: str = ""
    catalog_schema: str = ""
    run_key: str = ""
    out_dir: str = ""

    @property
    def dp_enabled(self) -> bool:
        """Return whether central differential privacy is on."""
        return self.dp_noise_multiplier > 0

    @classmethod
    def from_run_config(cls, config: Mapping[str, object]) -> RunSettings:
        """Read and check the settings from ``context.run_config``.

        Raises:
            RunConfigError: a key is mistyped or out of range.
        """
        d = cls()
        strategy = _text(config, "strategy") or d.strategy
        if strategy not in STRATEGIES:
            raise RunConfigError(
                f"run config 'strategy': expected one of {STRATEGIES}, found "
                f"{strategy!r}"
            )
        settings = cls(
            rounds=_integer(config, "num-server-rounds", d.rounds, 1),
            min_nodes=_integer(config, "min-nodes", d.min_nodes, 1),
            strategy=strategy,
            proximal_mu=_number(config, "proximal-mu", d.proximal_mu),
            trim_beta=_number(config, "trim-beta", d.trim_beta),
            dp_noise_multiplier=_number(
                config, "dp-noise-multiplier", d.dp_noise_multiplier
            ),
            dp_clipping_norm=_number(config, "dp-clipping-norm", d.dp_clipping_norm),
            fraction_train=_number(config, "fraction-train", d.fraction_train),
            round_timeout_s=_number(config, "round-timeout-s", d.round_timeout_s),
            quorum_wait_s=_number(config, "quorum-wait-s", d.quorum_wait_s),
            query_timeout_s=_number(config, "query-timeout-s", d.query_timeout_s),
            epochs=_integer(config, "epochs", d.epochs, 1),
            learning_rate=_number(config, "learning-rate", d.learning_rate),
            l2=_number(config, "l2", d.l2),
            class_weight_power=_number(
                config, "class-weight-power", d.class_weight_power
            ),
            cpu_budget_s=_number(config, "cpu-budget-s", d.cpu_budget_s),
            initial_model=_text(config, "initial-model"),
            catalog=_text(config, "catalog"),
            catalog_schema=_text(config, "catalog-schema"),
            run_key=_text(config, "run-key"),
            out_dir=_text(config, "out-dir"),
        )
        settings.check()
        return settings

    def check(self) -> None:
        """Raise ``RunConfigError`` for values out of range."""
        if not 0 < self.fraction_train <= 1:
            raise RunConfigError("run config 'fraction-train': expected 0 < x <= 1")
        if not 0 <= self.trim_beta < 0.5:
            raise RunConfigError("run config 'trim-beta': expected 0 <= x < 0.5")
        for key, value in (
            ("round-timeout-s", self.round_timeout_s),
            ("query-timeout-s", self.query_timeout_s),
            ("learning-rate", self.learning_rate),
            ("cpu-budget-s", self.cpu_budget_s),
        ):
            if value <= 0:
                raise RunConfigError(f"run config {key!r}: expected > 0, found {value}")
        for key, value in (
            ("quorum-wait-s", self.quorum_wait_s),
            ("proximal-mu", self.proximal_mu),
            ("l2", self.l2),
            ("class-weight-power", self.class_weight_power),
            ("dp-noise-multiplier", self.dp_noise_multiplier),
        ):
            if value < 0:
                raise RunConfigError(
                    f"run config {key!r}: expected >= 0, found {value}"
                )
        if self.dp_enabled and self.dp_clipping_norm <= 0:
            raise RunConfigError(
                "run config 'dp-clipping-norm': expected > 0 when "
                "dp-noise-multiplier is set"
            )
        if self.strategy == "fedprox" and self.proximal_mu <= 0:
            raise RunConfigError(
                "run config 'proximal-mu': fedprox needs a value > 0 (0 is FedAvg)"
            )
