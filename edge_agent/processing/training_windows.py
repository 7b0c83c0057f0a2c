"""Keep a ride's windows for federated training while the crash model scores it.

The crash scorer cuts every contract-v1 window of a ride once; a
:class:`TrainingWindowKeeper` given to it keeps, from those same windows,
the few the gateway's labelled-window store (``edge_agent.fl.store``) may
label, so no second windowing pass over the ride is needed:

* one window in ``normal_every`` (normal riding, stops, the suit at rest);
* every window within ``NEAR_WINDOWS`` of a window the model scored at or
  above its threshold (a detected crash, or a near miss: hard negatives);
* every window around an airbag event (positives for sure).

A window is decided only when the scorer is ``LOOKAHEAD_WINDOWS`` past it,
so an airbag event read from the log a little after its windows were scored
still keeps them. Memory stays bounded for any ride length: when more than
``max_normal`` normal windows are kept, every second one is dropped and the
stride doubles; windows around events stop at ``max_event`` (a warning says
so). The windows never leave the gateway.
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from models import contract

__all__ = [
    "LOOKAHEAD_WINDOWS",
    "MAX_EVENT_WINDOWS",
    "MAX_NORMAL_WINDOWS",
    "NEAR_WINDOWS",
    "NORMAL_EVERY",
    "TrainingWindowKeeper",
    "TrainingWindows",
]

_LOGGER = logging.getLogger(__name__)

# One window in 8 (one per 4 s): consecutive windows overlap by 75 %, so more
# would mostly repeat the same motion (the store samples normals the same way).
NORMAL_EVERY = 8
# A crash's impact lies inside its run of high windows; the windows the store
# labels as crash start up to 1.75 s (3.5 hops) either side of that run.
NEAR_WINDOWS = 4
# Windows wait this long (30 s of ride, 290 kB) before being decided, so an
# airbag event block read after the windows it concerns still keeps them.
LOOKAHEAD_WINDOWS = 60
# 2000 normal windows (9.6 MB) cover a 2 h 13 min ride at one per 4 s;
# longer rides are thinned evenly.
MAX_NORMAL_WINDOWS = 2000
# Windows around events (4.8 MB); only a model firing all ride long needs more.
MAX_EVENT_WINDOWS = 1000
# Windows kept around an airbag event: every start from one window before it
# to one hop after (the store's crash windows start 0.25-1.75 s before it).
_AIRBAG_BEFORE_S = contract.WINDOW_S + contract.WINDOW_HOP_S
_AIRBAG_AFTER_S = contract.WINDOW_HOP_S


@dataclass(frozen=True)
class TrainingWindows:
    """The windows kept from one ride, for ``WindowStore.add_log``."""

    windows: npt.NDArray[np.float32]
    starts_s: npt.NDArray[np.float64]
    airbag_offsets_s: list[float] = field(default_factory=list)
    normal_every: int = NORMAL_EVERY

    @property
    def count(self) -> int:
        """Return how many windows were kept."""
        return len(self.windows)


class TrainingWindowKeeper:
    """Choose, as windows are scored, which ones to keep for training."""

    def __init__(
        self,
        threshold: float,
        *,
        normal_every: int = NORMAL_EVERY,
        max_normal: int = MAX_NORMAL_WINDOWS,
        max_event: int = MAX_EVENT_WINDOWS,
    ) -> None:
        """Keep windows near scores of at least ``threshold`` (the model's)."""
        if normal_every < 1 or max_normal < 1 or max_event < 0:
            raise ValueError(
                f"normal_every {normal_every} and max_normal {max_normal} must be "
                f">= 1, max_event {max_event} >= 0"
            )
        self.threshold = threshold
        self.normal_every = normal_every
        self.max_normal = max_normal
        self.max_event = max_event
        self.airbag_offsets_s: list[float] = []
        self._pending: deque[tuple[int, npt.NDArray[np.float32]]] = deque()
        self._high: deque[int] = deque()
        self._seen = 0
        self._normal: dict[int, npt.NDArray[np.float32]] = {}
        self._event: dict[int, npt.NDArray[np.float32]] = {}
        self._event_full_logged = False

    def note_airbag(self, offset_s: float) -> None:
        """Record an airbag event ``offset_s`` after the ride's first sample."""
        self.airbag_offsets_s.append(float(offset_s))

    def add(
        self,
        first_index: int,
        windows: npt.NDArray[np.float32],
        probability: npt.NDArray[np.float32],
    ) -> None:
        """Take a scored batch: windows ``first_index`` onwards, their scores."""
        batch = np.array(windows, dtype=np.float32)  # the scorer's is a view
        for high in np.flatnonzero(probability >= self.threshold):
            self._high.append(first_index + int(high))
        for offset in range(len(batch)):
            self._pending.append((first_index + offset, batch[offset]))
        self._seen = first_index + len(batch)
        while self._pending and self._pending[0][0] + LOOKAHEAD_WINDOWS < self._seen:
            self._decide(*self._pending.popleft())

    def finish(self) -> TrainingWindows:
        """Decide the windows still waiting and return every kept window."""
        while self._pending:
            self._decide(*self._pending.popleft())
        kept = {**self._normal, **self._event}
        order = sorted(kept)
        windows = np.empty(
            (len(order), contract.WINDOW_SAMPLES, len(contract.INPUT_CHANNELS)),
            dtype=np.float32,
        )
        for row, index in enumerate(order):
            windows[row] = kept[index]
        self._normal.clear()
        self._event.clear()
        return TrainingWindows(
            windows=windows,
            starts_s=np.asarray(order, dtype=np.float64) * contract.WINDOW_HOP_S,
            airbag_offsets_s=list(self.airbag_offsets_s),
            normal_every=self.normal_every,
        )

    def _near_event(self, index: int) -> bool:
        # High windows further back than the nearness cannot matter any more.
        while self._high and self._high[0] < index - NEAR_WINDOWS:
            self._high.popleft()
        if self._high and self._high[0] <= index + NEAR_WINDOWS:
            return True
        start_s = index * contract.WINDOW_HOP_S
        return any(
            offset_s - _AIRBAG_BEFORE_S <= start_s <= offset_s + _AIRBAG_AFTER_S
            for offset_s in self.airbag_offsets_s
        )

    def _decide(self, index: int, window: npt.NDArray[np.float32]) -> None:
        if self._near_event(index):
            if len(self._event) < self.max_event:
                self._event[index] = window.copy()
            elif not self._event_full_logged:
                self._event_full_logged = True
                _LOGGER.warning(
                    "training windows: %d windows around events kept; later "
                    "ones of this ride are not",
                    self.max_event,
                )
            return
        if index % self.normal_every:
            return
        self._normal[index] = window.copy()
        if len(self._normal) > self.max_normal:
            self.normal_every *= 2
            for kept in [i for i in self._normal if i % self.normal_every]:
                del self._normal[kept]
