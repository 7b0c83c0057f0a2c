"""What travels between the SuperLink and a gateway: the head and a few figures.

Every message of a run carries at most

* an ``ArrayRecord`` ``arrays`` with exactly two arrays, ``kernel`` (k,
  float32, k <= 64) and ``bias`` (1, float32): the model head, nothing else;
* a ``MetricRecord`` ``metrics`` of scalar figures (counts, losses, rates);
* a ``ConfigRecord`` ``config`` of scalar settings (server to gateway) or a
  short reason (gateway to server).

Raw windows and embeddings never leave the gateway. :func:`head_from_arrays`
refuses anything that is not a finite, model-sized head, so a misbehaving
peer cannot smuggle other arrays through either side.
"""

from __future__ import annotations

import numpy as np
from flwr.app import Array, ArrayRecord

from models import contract
from models.head import ModelHead

from .errors import TrainingError

__all__ = [
    "ARRAYS_KEY",
    "CONFIG_KEY",
    "ERROR_NOT_ELIGIBLE",
    "ERROR_TRAINING_FAILED",
    "HEAD_ARRAY_KEYS",
    "METRICS_KEY",
    "head_from_arrays",
    "head_to_arrays",
]

ARRAYS_KEY = "arrays"
CONFIG_KEY = "config"
METRICS_KEY = "metrics"
HEAD_ARRAY_KEYS = ("kernel", "bias")
# Error codes of gateway replies (Flower's own codes stay below 100).
ERROR_NOT_ELIGIBLE = 4001
ERROR_TRAINING_FAILED = 4002


def head_to_arrays(head: ModelHead) -> ArrayRecord:
    """Return the ``ArrayRecord`` carrying ``head``."""
    return ArrayRecord(
        {
            "kernel": Array(np.asarray(head.kernel, dtype=np.float32)),
            "bias": Array(np.asarray([head.bias], dtype=np.float32)),
        }
    )


def head_from_arrays(
    arrays: ArrayRecord, *, expected_dim: int | None = None
) -> ModelHead:
    """Return the head an ``ArrayRecord`` carries, checked.

    Raises:
        TrainingError: other keys than ``kernel`` and ``bias``, wrong shapes
            (``expected_dim`` when given), or non-finite values.
    """
    keys = sorted(arrays.keys())
    if keys != sorted(HEAD_ARRAY_KEYS):
        raise TrainingError(f"expected arrays {list(HEAD_ARRAY_KEYS)}, found {keys}")
    kernel = np.asarray(arrays["kernel"].numpy(), dtype=np.float32)
    bias = np.asarray(arrays["bias"].numpy(), dtype=np.float32)
    if kernel.ndim != 1 or not 1 <= len(kernel) <= contract.EMBEDDING_MAX_SIZE:
        raise TrainingError(f"kernel must be (k,), k <= 64, found {kernel.shape}")
    if expected_dim is not None and len(kernel) != expected_dim:
        raise TrainingError(
            f"kernel has {len(kernel)} values, the model's embedding {expected_dim}"
        )
    if bias.shape != (1,):
        raise TrainingError(f"bias must be (1,), found {bias.shape}")
    try:
        return ModelHead(kernel, float(bias[0]))
    except ValueError as exc:
        raise TrainingError(str(exc)) from exc
