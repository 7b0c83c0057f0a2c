"""Federated learning on the gateway: labelled windows, head training, ClientApp.

The gateway's SuperNode runs :data:`edge_agent.fl.client_app.app`; it trains
only the crash model's head, in NumPy, on embeddings the gateway's TFLite
model computes from its own labelled windows (:mod:`.store`), which never
leave the gateway. Errors are drawn in :mod:`.errors`.
"""

from .commands import apply_training_command
from .errors import (
    CommandError,
    FederatedError,
    NodeConfigError,
    TrainingError,
    WindowStoreError,
)
from .store import StoreCounts, WindowStore
from .training import TrainingResult, TrainingSettings, evaluate_head, train_head

__all__ = [
    "CommandError",
    "FederatedError",
    "NodeConfigError",
    "StoreCounts",
    "TrainingError",
    "TrainingResult",
    "TrainingSettings",
    "WindowStore",
    "WindowStoreError",
    "apply_training_command",
    "evaluate_head",
    "train_head",
]
