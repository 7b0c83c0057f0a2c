"""Fine-tune the crash model's head in NumPy on this gateway's embeddings.

The head is the model's last layer, ``p = sigmoid(embedding @ kernel +
bias)`` (:mod:`models.head`); the embedding comes from the TFLite model the
gateway runs (transfer learning: the feature extractor stays frozen, so no
TensorFlow is needed here). Training minimises the class-weighted log loss

    L = sum_i c_i * logloss(y_i, p_i) / sum_i c_i + l2/2 |kernel|^2
        + mu/2 |(kernel, bias) - (kernel, bias)_global|^2

with full-batch Adam from the global head the server sent. ``mu`` is the
FedProx proximal weight (0 for FedAvg). Class weights: crash windows count
``(negatives / positives) ** class_weight_power`` times a normal one. Full
inverse-frequency weighting (power 1) lets a handful of crash windows push
the decision boundary into normal riding and raises false alarms; 0.5
balances recall against false alarms on synthetic rides.

The CPU budget is checked after every epoch (``time.process_time``); a
round that runs out stops early and reports how many epochs it ran.

Errors: :class:`~edge_agent.fl.errors.TrainingError`.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from models.evaluation import window_figures
from models.head import ModelHead

from .errors import TrainingError

__all__ = [
    "HeadMetrics",
    "TrainingResult",
    "TrainingSettings",
    "class_weights",
    "evaluate_head",
    "train_head",
]

_LOGGER = logging.getLogger(__name__)

# Adam's usual moment decays and epsilon; full-batch, so no noise to average.
_BETA1 = 0.9
_BETA2 = 0.999
_EPSILON = 1e-8


@dataclass(frozen=True)
class TrainingSettings:
    """How one round trains the head (the server sends these per round)."""

    epochs: int = 300
    learning_rate: float = 0.05
    l2: float = 1e-4
    proximal_mu: float = 0.0
    class_weight_power: float = 0.5
    cpu_budget_s: float = 60.0

    def __post_init__(self) -> None:
        if self.epochs < 1:
            raise ValueError(f"epochs must be >= 1, found {self.epochs}")
        for name in ("learning_rate", "cpu_budget_s"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, found {getattr(self, name)}")
        for name in ("l2", "proximal_mu", "class_weight_power"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be finite and >= 0, found {value}")


@dataclass(frozen=True)
class TrainingResult:
    """A trained head and how training went."""

    head: ModelHead
    examples: int
    positives: int
    loss_before: float
    loss_after: float
    epochs_run: int
    cpu_s: float


@dataclass(frozen=True)
class HeadMetrics:
    """A head's figures on labelled windows at the decision threshold."""

    examples: int
    positives: int
    loss: float
    precision: float
    recall: float
    false_positives: int
    auc: float


def class_weights(
    labels: npt.NDArray[np.int8], power: float
) -> npt.NDArray[np.float64]:
    """Return per-window weights, normalised to mean 1 (see the module doc)."""
    y = np.asarray(labels)
    positives = int(np.sum(y == 1))
    negatives = int(np.sum(y == 0))
    if positives == 0 or negatives == 0:
        return np.ones(len(y), dtype=np.float64)
    weights: npt.NDArray[np.float64] = np.where(
        y == 1, (negatives / positives) ** power, 1.0
    )
    return weights / float(weights.mean())


def _sigmoid(z: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    out = np.empty_like(z)
    pos = z >= 0
    out[pos] = 1.0 / (1.0 + np.exp(-z[pos]))
    ez = np.exp(z[~pos])
    out[~pos] = ez / (1.0 + ez)
    return out


def _log_loss(
    z: npt.NDArray[np.float64], y: npt.NDArray[np.float64], c: npt.NDArray[np.float64]
) -> float:
    # log(1 + e^z) - y z, computed without overflow.
    per = np.logaddexp(0.0, z) - y * z
    return float(np.sum(c * per) / np.sum(c))


def _check(
    embeddings: npt.ArrayLike, labels: npt.ArrayLike, head: ModelHead
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    e = np.asarray(embeddings, dtype=np.float64)
    y = np.asarray(labels)
    if e.ndim != 2 or e.shape[1] != head.embedding_dim or len(y) != len(e):
        raise TrainingError(
            f"expected ({len(y)}, {head.embedding_dim}) embeddings for {len(y)} "
            f"labels, found {e.shape}"
        )
    if not np.all(np.isin(y, (0, 1))):
        raise TrainingError("labels must be 0 or 1")
    if not np.all(np.isfinite(e)):
        raise TrainingError("embeddings hold NaN or infinite values")
    return e, y.astype(np.float64)


def train_head(
    embeddings: npt.ArrayLike,
    labels: npt.ArrayLike,
    start: ModelHead,
    settings: TrainingSettings,
) -> TrainingResult:
    """Train the head from ``start`` on (n, k) embeddings and 0/1 labels.

    Raises:
        TrainingError: shapes disagree, labels are not 0/1, no window of
            some class, or training diverged to non-finite weights.
    """
    e, y = _check(embeddings, labels, start)
    positives = int(y.sum())
    if positives == 0 or positives == len(y):
        raise TrainingError(
            f"need crash and normal windows, found {positives} crash of {len(y)}"
        )
    c = class_weights(y.astype(np.int8), settings.class_weight_power)
    c_sum = float(c.sum())
    global_w = start.kernel.astype(np.float64)
    global_b = float(start.bias)
    w, b = global_w.copy(), global_b
    m_w, v_w = np.zeros_like(w), np.zeros_like(w)
    m_b = v_b = 0.0
    loss_before = _log_loss(e @ w + b, y, c)

    cpu_start = time.process_time()
    epochs_run = 0
    for step in range(1, settings.epochs + 1):
        z = e @ w + b
        residual = (_sigmoid(z) - y) * c / c_sum
        grad_w = (
            e.T @ residual + settings.l2 * w + settings.proximal_mu * (w - global_w)
        )
        grad_b = float(residual.sum()) + settings.proximal_mu * (b - global_b)
        m_w = _BETA1 * m_w + (1 - _BETA1) * grad_w
        v_w = _BETA2 * v_w + (1 - _BETA2) * grad_w**2
        m_b = _BETA1 * m_b + (1 - _BETA1) * grad_b
        v_b = _BETA2 * v_b + (1 - _BETA2) * grad_b**2
        correction1 = 1 - _BETA1**step
        correction2 = 1 - _BETA2**step
        w -= (
            settings.learning_rate
            * (m_w / correction1)
            / (np.sqrt(v_w / correction2) + _EPSILON)
        )
        b -= (
            settings.learning_rate
            * (m_b / correction1)
            / (math.sqrt(v_b / correction2) + _EPSILON)
        )
        epochs_run = step
        if time.process_time() - cpu_start > settings.cpu_budget_s:
            _LOGGER.warning(
                "head training stopped after %d/%d epochs: CPU budget %.1f s spent",
                step,
                settings.epochs,
                settings.cpu_budget_s,
            )
            break
    cpu_s = time.process_time() - cpu_start
    if not (np.all(np.isfinite(w)) and math.isfinite(b)):
        raise TrainingError("training diverged: non-finite head weights")
    head = ModelHead(w.astype(np.float32), float(b))
    return TrainingResult(
        head=head,
        examples=len(y),
        positives=positives,
        loss_before=loss_before,
        loss_after=_log_loss(e @ w + b, y, c),
        epochs_run=epochs_run,
        cpu_s=cpu_s,
    )


def evaluate_head(
    embeddings: npt.ArrayLike,
    labels: npt.ArrayLike,
    head: ModelHead,
    *,
    threshold: float,
    class_weight_power: float = 0.5,
) -> HeadMetrics:
    """Return the head's loss and window figures on labelled embeddings.

    Raises:
        TrainingError: shapes disagree or labels are not 0/1.
    """
    e, y = _check(embeddings, labels, head)
    if len(y) == 0:
        raise TrainingError("no labelled windows to evaluate on")
    c = class_weights(y.astype(np.int8), class_weight_power)
    z = e @ head.kernel.astype(np.float64) + head.bias
    probability = _sigmoid(z)
    figures = window_figures(y.astype(np.int8), probability, threshold)
    false_positives = int(np.sum((probability >= threshold) & (y == 0)))
    return HeadMetrics(
        examples=len(y),
        positives=int(y.sum()),
        loss=_log_loss(z, y, c),
        precision=figures.precision,
        recall=figures.recall,
        false_positives=false_positives,
        auc=figures.auc,
    )
