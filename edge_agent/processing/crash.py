"""Crash verdict: run the crash model over the ride and locate each crash.

The model (``models.runtime.CrashModelRunner`` on LiteRT, batched) scores
contract-v1 windows cut from the 100 Hz model input the pipeline collects,
batch by batch while the ride streams (``CrashScorer``).
Events follow the rule the model was evaluated with
(``models.events.group_events``): a run of at least ``min_run_windows``
windows at or above the threshold is an alarm, alarms whose windows start
within ``MERGE_GAP_S`` (5 s) of each other are one event (a tumbling crash
dips below the threshold now and then), and an event's time is the largest
acceleration magnitude, at native rate, anywhere inside its windows.

A stream sampled below ``MIN_NATIVE_RATE_HZ`` cannot be judged: its 100 Hz
input would be mostly interpolation. Its verdict is ``detected: None`` with
the reason, as is a ride shorter than one window or a gateway without model.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from models import contract
from models.errors import ModelError
from models.events import Event, group_events
from models.registry import ModelInfo, load_model_info, shipped_model
from models.runtime import CrashModelRunner

from .errors import CrashModelError
from .training_windows import TrainingWindowKeeper

__all__ = [
    "DEFAULT_BATCH_WINDOWS",
    "CrashDetector",
    "CrashEvent",
    "CrashScorer",
    "CrashVerdict",
    "utc_text",
]

_LOGGER = logging.getLogger(__name__)

# 256 windows (128 s of ride, 1.2 MB of input) per invoke: fewer interpreter
# round trips than the runner's default, still small on a 1 GB gateway.
DEFAULT_BATCH_WINDOWS = 256
# LiteRT uses this many threads per invoke (one per core of a 2-core gateway).
DEFAULT_MODEL_THREADS = 2


def utc_text(t_utc_us: int | None) -> str | None:
    """Return ISO 8601 UTC text with microseconds and ``Z``, or None."""
    if t_utc_us is None:
        return None
    moment = datetime.fromtimestamp(t_utc_us / 1e6, tz=UTC)
    return moment.isoformat(timespec="microseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class CrashEvent:
    """One detected crash."""

    t_offset_s: float
    t_utc: str | None
    probability: float
    peak_g: float
    first_window_s: float
    last_window_end_s: float

    def as_dict(self) -> dict[str, Any]:
        """Return the event as the analytics ``crash.events`` entry."""
        return {
            "t_utc": self.t_utc,
            "t_offset_s": round(self.t_offset_s, 3),
            "probability": round(self.probability, 4),
            "peak_g": round(self.peak_g, 2),
        }


@dataclass(frozen=True)
class CrashVerdict:
    """The crash block of the analytics: detected true/false/None, events."""

    detected: bool | None
    events: list[CrashEvent] = field(default_factory=list)
    reason: str | None = None
    windows: int = 0

    def as_dict(self) -> dict[str, Any]:
        """Return the analytics ``crash`` block."""
        block: dict[str, Any] = {
            "detected": self.detected,
            "events": [e.as_dict() for e in self.events],
        }
        if self.reason is not None:
            block["reason"] = self.reason
        return block


class CrashDetector:
    """A verified crash model ready to score rides (load once, reuse)."""

    def __init__(
        self,
        info: ModelInfo,
        batch_windows: int = DEFAULT_BATCH_WINDOWS,
        num_threads: int = DEFAULT_MODEL_THREADS,
    ) -> None:
        """Open the model of ``info`` on LiteRT.

        Raises:
            CrashModelError: the interpreter cannot load it or its tensors do
                not match contract v1.
        """
        self.info = info
        self.batch_windows = batch_windows
        try:
            self._runner = CrashModelRunner.from_info(info, batch_windows, num_threads)
        except ModelError as exc:
            raise CrashModelError(str(info.path), "load", str(exc)) from exc

    @classmethod
    def load(cls, model_path: Path, metadata_path: Path | None = None) -> CrashDetector:
        """Verify a model file against its metadata JSON and open it.

        Raises:
            CrashModelError: a file is missing, the SHA-256 differs, the
                metadata is malformed or the model breaks the contract.
        """
        try:
            info = load_model_info(Path(model_path), metadata_path)
        except ModelError as exc:
            raise CrashModelError(str(model_path), "verify", str(exc)) from exc
        return cls(info)

    @classmethod
    def shipped(cls) -> CrashDetector:
        """Open the model packaged with this software.

        Raises:
            CrashModelError: the packaged model is missing or fails checks.
        """
        try:
            info = shipped_model()
        except ModelError as exc:
            raise CrashModelError("models/shipped", "verify", str(exc)) from exc
        return cls(info)

    @property
    def model_block(self) -> dict[str, str]:
        """Return the analytics ``model`` block (name, version, sha256)."""
        meta = self.info.metadata
        return {"name": meta.name, "version": meta.version, "sha256": meta.sha256}

    @property
    def threshold(self) -> float:
        """Return the probability at or above which a window counts as high."""
        return float(self.info.metadata.decision.threshold)

    def scorer(self, keeper: TrainingWindowKeeper | None = None) -> CrashScorer:
        """Return a scorer for one ride (windows scored as the ride streams).

        Args:
            keeper: also hand every scored batch to it, to keep windows for
                federated training from the same windowing pass.
        """
        return CrashScorer(self, keeper)

    def predict(self, windows: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """Return the crash probability of each (200, 6) window.

        Raises:
            CrashModelError: the interpreter fails.
        """
        try:
            return self._runner.predict(windows).probability
        except (ValueError, RuntimeError) as exc:
            raise CrashModelError(str(self.info.path), "invoke", str(exc)) from exc


class CrashScorer:
    """Score a ride's windows while it streams, then give the verdict.

    The scorer keeps only the model input its next windows need (at most a
    batch of windows, about two minutes of 100 Hz rows), so a 3-hour ride
    never holds its 26 MB of model input at once. Windows are independent:
    scoring them in batches as the input grows gives the same probabilities
    as scoring the whole ride at the end, and lets inference overlap the CSV
    compression threads.
    """

    def __init__(
        self, detector: CrashDetector, keeper: TrainingWindowKeeper | None = None
    ) -> None:
        self._detector = detector
        self.keeper = keeper
        self._batch = detector.batch_windows
        self._scored: list[npt.NDArray[np.float32]] = []
        self._count = 0
        channels = len(contract.INPUT_CHANNELS)
        self._rows = np.empty((0, channels), dtype=np.float32)
        self._rows_start = 0  # grid index of self._rows[0]

    @property
    def probability(self) -> npt.NDArray[np.float32]:
        """Return the probabilities of the windows scored so far."""
        if not self._scored:
            return np.empty(0, dtype=np.float32)
        return np.concatenate(self._scored)

    def push(self, rows: npt.NDArray[np.float32]) -> None:
        """Append model-input rows (acc in g, gyro in rad/s, 100 Hz) and score
        the full batches of complete windows."""
        self._rows = np.concatenate([self._rows, rows]) if len(self._rows) else rows
        ready = self._ready()
        self._score(ready - ready % self._batch)

    def finish(
        self, peak_g: npt.NDArray[np.float32], start_utc_us: int | None
    ) -> CrashVerdict:
        """Score the remaining windows and return the ride's verdict.

        Args:
            peak_g: per 10 ms grid cell, the largest native |acc| in g.
            start_utc_us: wall-clock time of the first sample, or None.
        """
        self._score(self._ready())
        if self._count == 0:
            return CrashVerdict(
                None, reason=f"ride shorter than one {contract.WINDOW_S:g} s window"
            )
        probability = self.probability
        starts_s = contract.window_starts_s(len(probability))
        rule = self._detector.info.metadata.decision
        events = [
            _crash_event(event, start_utc_us)
            for event in group_events(probability, starts_s, peak_g, rule)
        ]
        return CrashVerdict(bool(events), events, windows=len(probability))

    def _ready(self) -> int:
        """Return how many complete windows are not scored yet."""
        return _complete_windows(self._rows_start + len(self._rows)) - self._count

    def _score(self, count: int) -> None:
        if count <= 0:
            return
        first = self._count * contract.HOP_SAMPLES - self._rows_start
        stop = first + (count - 1) * contract.HOP_SAMPLES + contract.WINDOW_SAMPLES
        windows = contract.make_windows(self._rows[first:stop])
        probability = self._detector.predict(windows)
        self._scored.append(probability)
        if self.keeper is not None:
            self.keeper.add(self._count, windows, probability)
        self._count += len(windows)
        # Rows before the next window's start are not needed any more.
        drop = self._count * contract.HOP_SAMPLES - self._rows_start
        self._rows = self._rows[drop:].copy()
        self._rows_start += drop


def _complete_windows(grid_points: int) -> int:
    """Return how many windows ``make_windows`` cuts from this many points."""
    if grid_points < contract.WINDOW_SAMPLES:
        return 0
    return (grid_points - contract.WINDOW_SAMPLES) // contract.HOP_SAMPLES + 1


def _crash_event(event: Event, start_utc_us: int | None) -> CrashEvent:
    """Return the analytics view of a grouped event (wall-clock time added)."""
    t_utc_us = None if start_utc_us is None else start_utc_us + round(event.t_s * 1e6)
    return CrashEvent(
        t_offset_s=event.t_s,
        t_utc=utc_text(t_utc_us),
        probability=event.probability,
        peak_g=event.peak_g,
        first_window_s=event.start_s,
        last_window_end_s=event.end_s,
    )
