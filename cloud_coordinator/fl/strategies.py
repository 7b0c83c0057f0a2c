"""Build the aggregation strategy of a run from Flower's own strategies.

* ``fedavg``: FedAvg weighted by each gateway's ``num-examples`` (default);
* ``fedprox``: FedAvg plus the proximal weight ``proximal-mu`` sent to the
  gateways, which add the proximal term to their loss
  (``edge_agent.fl.training``); it keeps gateways with unusual data from
  drifting far from the global head;
* ``trimmed-mean``: coordinate-wise mean after cutting ``trim-beta`` of
  each tail (Flower's ``FedTrimmedAvg``). With three gateways a cut below
  1/3 cuts nothing, so the default is 0.34;
* ``median``: coordinate-wise median (``FedMedian``);
* ``krum``: the one update closest to its neighbours (``Krum``, assuming one
  misbehaving gateway).

Central differential privacy (``dp-noise-multiplier`` > 0) wraps any of them
in Flower's ``DifferentialPrivacyServerSideFixedClipping``: each update is
clipped to ``dp-clipping-norm`` around the global head and Gaussian noise
of ``noise_multiplier * clipping_norm / min-nodes`` is added to the aggregate.
The noise is scaled for ``min-nodes`` updates; a round with more
participants gets somewhat more privacy than configured, never less.
"""

from __future__ import annotations

import logging
from typing import Any

from flwr.serverapp.strategy import (
    DifferentialPrivacyServerSideFixedClipping,
    FedAvg,
    FedMedian,
    FedProx,
    FedTrimmedAvg,
    Krum,
    Strategy,
)

from .settings import RunSettings

__all__ = ["build_strategy"]

_LOGGER = logging.getLogger(__name__)


def build_strategy(settings: RunSettings) -> Strategy:
    """Return the strategy ``settings`` names, DP-wrapped when asked.

    Sampling is the round loop's job (:mod:`.rounds` shows the strategy only
    the eligible gateways), so every minimum is the run's quorum.
    """
    common: dict[str, Any] = {
        "fraction_train": settings.fraction_train,
        "fraction_evaluate": 1.0,
        "min_train_nodes": settings.min_nodes,
        "min_evaluate_nodes": settings.min_nodes,
        "min_available_nodes": settings.min_nodes,
    }
    base: FedAvg
    if settings.strategy == "fedprox":
        base = FedProx(**common, proximal_mu=settings.proximal_mu)
    elif settings.strategy == "trimmed-mean":
        base = FedTrimmedAvg(**common, beta=settings.trim_beta)
    elif settings.strategy == "median":
        base = FedMedian(**common)
    elif settings.strategy == "krum":
        base = Krum(**common, num_malicious_nodes=1)
    else:
        base = FedAvg(**common)
    if not settings.dp_enabled:
        return base
    _LOGGER.info(
        "central DP on: clipping norm %.4g, noise multiplier %.4g, %d updates",
        settings.dp_clipping_norm,
        settings.dp_noise_multiplier,
        settings.min_nodes,
    )
    return DifferentialPrivacyServerSideFixedClipping(
        base,
        noise_multiplier=settings.dp_noise_multiplier,
        clipping_norm=settings.dp_clipping_norm,
        num_sampled_clients=settings.min_nodes,
    )
