"""The gateway's bounded store of labelled windows for federated training.

One SQLite file (WAL, ``synchronous=FULL``) beside the custody buffer,
``buffer/fl-windows.db`` by default. Each row is one contract-v1 window
(200 x 6 float32, 4800 bytes) of one rider's log with its label:

* ``1`` (crash): windows around an airbag event, recorded when the log is
  processed, and windows around a crash the cloud confirmed (a
  ``crash_verdict`` command with ``verdict = confirmed``);
* ``0`` (normal): a sample of the log's other windows (riding, stops,
  walking, the suit lying on the charger) and, as hard negatives, the windows
  of a detected crash the cloud rejected;
* pending (``NULL``): windows around a crash the gateway detected, until the
  cloud's verdict labels or drops them. Pending windows are never trained on.

Windows near an impact that are neither a clean onset nor normal riding
follow the crash model's own labelling (``models.dataset.label_windows``):
ambiguous ones are not stored.

**Consent.** A rider who opted out of training (``training_consent`` with
``opted_out = true``) has every window deleted at once, and no window of
theirs is stored until they opt in again; the opt-out is kept in the
``consent`` table. A consent command older than the one stored is ignored,
so commands re-delivered out of order cannot undo a newer choice.

**Bound.** At most ``max_windows`` rows: beyond it the oldest normal windows
go first, crash windows only when nothing else is left (crashes are rare).

Errors: :class:`~edge_agent.fl.errors.WindowStoreError`, naming the file.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import numpy.typing as npt

from models import contract
from models.dataset import label_windows

from .errors import WindowStoreError

__all__ = [
    "DEFAULT_MAX_WINDOWS",
    "NEGATIVE_EVERY",
    "STORE_FILE_NAME",
    "StoreCounts",
    "WindowStore",
]

_LOGGER = logging.getLogger(__name__)

STORE_FILE_NAME = "fl-windows.db"
# 4000 windows x 4.8 kB = 19 MB of flash: room for about 30 crashes' windows
# and an hour of sampled riding, small beside the custody buffer.
DEFAULT_MAX_WINDOWS = 4000
# Keep every 8th normal window (one per 4 s of log): consecutive windows
# overlap by 75 %, so keeping all would mostly store the same motion again.
NEGATIVE_EVERY = 8
_WINDOW_SHAPE = (contract.WINDOW_SAMPLES, len(contract.INPUT_CHANNELS))
_WINDOW_BYTES = _WINDOW_SHAPE[0] * _WINDOW_SHAPE[1] * 4
_SCHEMA = (
    """
    CREATE TABLE IF NOT EXISTS windows (
        window_id INTEGER PRIMARY KEY AUTOINCREMENT,
        log_id TEXT NOT NULL,
        rider_id TEXT NOT NULL,
        start_s REAL NOT NULL,
        label INTEGER CHECK (label IN (0, 1)),
        source TEXT NOT NULL,
        added_utc TEXT NOT NULL,
        data BLOB NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS windows_log ON windows (log_id)",
    "CREATE INDEX IF NOT EXISTS windows_rider ON windows (rider_id)",
    """
    CREATE TABLE IF NOT EXISTS consent (
        rider_id TEXT PRIMARY KEY,
        opted_out INTEGER NOT NULL,
        issued_at TEXT NOT NULL
    )""",
    """
    CREATE TABLE IF NOT EXISTS applied_commands (
        command_id TEXT PRIMARY KEY,
        applied_utc TEXT NOT NULL
    )""",
)


@dataclass(frozen=True)
class StoreCounts:
    """How many windows the store holds, by label."""

    positives: int
    negatives: int
    pending: int

    @property
    def labelled(self) -> int:
        """Return the windows training may use (crash and normal)."""
        return self.positives + self.negatives


def _utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class WindowStore:
    """The labelled-window store in one SQLite file; see the module docstring."""

    def __init__(self, path: Path, *, max_windows: int = DEFAULT_MAX_WINDOWS) -> None:
        """Open (creating if needed) the store at ``path``.

        Raises:
            WindowStoreError: the file cannot be opened or is not a store.
        """
        if max_windows < 1:
            raise ValueError(f"max_windows must be >= 1, found {max_windows}")
        self.path = Path(path)
        self.max_windows = max_windows
        self._lock = threading.Lock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute("PRAGMA busy_timeout=5000")
            with self._db:
                for statement in _SCHEMA:
                    self._db.execute(statement)
        except sqlite3.Error as exc:
            raise WindowStoreError(
                f"{self.path}: cannot open window store: {exc}"
            ) from exc

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            self._db.close()

    def __enter__(self) -> WindowStore:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            try:
                with self._db:
                    yield self._db
            except sqlite3.Error as exc:
                raise WindowStoreError(f"{self.path}: write failed: {exc}") from exc

    def _read(
        self, query: str, params: Sequence[object] = ()
    ) -> list[tuple[object, ...]]:
        with self._lock:
            try:
                return list(self._db.execute(query, params).fetchall())
            except sqlite3.Error as exc:
                raise WindowStoreError(f"{self.path}: read failed: {exc}") from exc

    # -- consent -------------------------------------------------------------

    def opted_out(self, rider_id: str) -> bool:
        """Return whether ``rider_id`` opted out of training."""
        rows = self._read(
            "SELECT opted_out FROM consent WHERE rider_id = ?", (rider_id,)
        )
        return bool(rows and rows[0][0])

    def set_consent(self, rider_id: str, *, opted_out: bool, issued_at: str) -> int:
        """Record a rider's training choice; delete their windows on opt-out.

        ``issued_at`` is the command's ISO-8601 time; a choice older than the
        stored one is ignored. Returns how many windows were deleted.
        """
        with self._write() as db:
            row = db.execute(
                "SELECT issued_at FROM consent WHERE rider_id = ?", (rider_id,)
            ).fetchone()
            if row is not None and _parse_time(row[0]) > _parse_time(issued_at):
                _LOGGER.info(
                    "rider %s: training choice of %s ignored, a newer one (%s) holds",
                    rider_id,
                    issued_at,
                    row[0],
                )
                return 0
            db.execute(
                "INSERT INTO consent (rider_id, opted_out, issued_at) VALUES (?, ?, ?) "
                "ON CONFLICT (rider_id) DO UPDATE SET opted_out = excluded.opted_out, "
                "issued_at = excluded.issued_at",
                (rider_id, int(opted_out), issued_at),
            )
            deleted = 0
            if opted_out:
                deleted = db.execute(
                    "DELETE FROM windows WHERE rider_id = ?", (rider_id,)
                ).rowcount
        _LOGGER.info(
            "rider %s: training %s, %d windows deleted",
            rider_id,
            "opted out" if opted_out else "allowed",
            deleted,
        )
        return deleted

    # -- adding windows ------------------------------------------------------

    def add_log(
        self,
        *,
        log_id: str,
        rider_id: str,
        windows: npt.NDArray[np.float32],
        starts_s: npt.NDArray[np.float64],
        airbag_offsets_s: Sequence[float] = (),
        detected_offsets_s: Sequence[float] = (),
        negative_every: int = NEGATIVE_EVERY,
    ) -> StoreCounts:
        """Store the labelled windows of one processed log.

        Args:
            log_id: the custody log id (crash verdicts name it).
            rider_id: whose log it is (consent is per rider).
            windows: (n, 200, 6) contract-v1 windows of the whole log.
            starts_s: (n,) window start times from the log's first sample.
            airbag_offsets_s: airbag events in the log (crashes for sure).
            detected_offsets_s: crashes the model detected; their windows wait
                for the cloud's verdict.
            negative_every: keep one normal window in this many.

        Returns:
            The windows added, by label.

        Raises:
            ValueError: ``windows`` and ``starts_s`` do not match.
            WindowStoreError: the database write failed.
        """
        windows = np.asarray(windows, dtype=np.float32)
        starts_s = np.asarray(starts_s, dtype=np.float64)
        if windows.ndim != 3 or windows.shape[1:] != _WINDOW_SHAPE:
            raise ValueError(
                f"log {log_id}: windows must be (n, {_WINDOW_SHAPE[0]}, "
                f"{_WINDOW_SHAPE[1]}), found {windows.shape}"
            )
        if len(starts_s) != len(windows):
            raise ValueError(
                f"log {log_id}: {len(windows)} windows but {len(starts_s)} start times"
            )
        if self.opted_out(rider_id):
            _LOGGER.info(
                "log %s: rider %s opted out, no windows kept", log_id, rider_id
            )
            return StoreCounts(0, 0, 0)

        # Ambiguous (-1) around any event; positives and pending by event.
        ignored = np.zeros(len(windows), dtype=bool)
        positive = np.zeros(len(windows), dtype=bool)
        pending = np.zeros(len(windows), dtype=bool)
        for offset_s in airbag_offsets_s:
            labels = label_windows(starts_s, float(offset_s))
            positive |= labels == 1
            ignored |= labels == -1
        for offset_s in detected_offsets_s:
            labels = label_windows(starts_s, float(offset_s))
            pending |= (labels == 1) & ~positive
            ignored |= labels == -1
        normal = ~(ignored | positive | pending)
        normal_index = np.flatnonzero(normal)[:: max(1, negative_every)]

        rows: list[tuple[object, ...]] = []
        added = _utc_now()
        for index, label, source in (
            *((i, 1, "airbag") for i in np.flatnonzero(positive)),
            *((i, None, "detected") for i in np.flatnonzero(pending)),
            *((i, 0, "normal") for i in normal_index),
        ):
            rows.append(
                (
                    log_id,
                    rider_id,
                    float(starts_s[index]),
                    label,
                    source,
                    added,
                    np.ascontiguousarray(windows[index]).tobytes(),
                )
            )
        with self._write() as db:
            db.executemany(
                "INSERT INTO windows (log_id, rider_id, start_s, label, source, "
                "added_utc, data) VALUES (?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
            self._enforce_bound(db)
        counts = StoreCounts(int(positive.sum()), len(normal_index), int(pending.sum()))
        _LOGGER.info(
            "log %s: %d crash, %d normal and %d pending windows stored",
            log_id,
            counts.positives,
            counts.negatives,
            counts.pending,
        )
        return counts

    def _enforce_bound(self, db: sqlite3.Connection) -> None:
        total = int(db.execute("SELECT COUNT(*) FROM windows").fetchone()[0])
        excess = total - self.max_windows
        if excess <= 0:
            return
        # Normal windows first (oldest first), then pending, then crashes.
        db.execute(
            "DELETE FROM windows WHERE window_id IN (SELECT window_id FROM windows "
            "ORDER BY CASE WHEN label = 0 THEN 0 WHEN label IS NULL THEN 1 ELSE 2 "
            "END, window_id LIMIT ?)",
            (excess,),
        )
        _LOGGER.info(
            "window store over %d windows: %d evicted", self.max_windows, excess
        )

    # -- verdicts ------------------------------------------------------------

    def apply_verdict(
        self,
        *,
        command_id: str,
        log_id: str,
        confirmed: bool,
        t_offset_s: float | None,
    ) -> int:
        """Label a detected crash's pending windows with the cloud's verdict.

        A confirmed crash with ``t_offset_s`` relabels the log's pending
        windows around that impact as crashes (the others are dropped as
        ambiguous); without it every pending window becomes a crash. A
        rejected one turns them into normal windows (hard negatives). A
        command applied before is ignored. Returns how many windows changed.
        """
        with self._write() as db:
            seen = db.execute(
                "SELECT 1 FROM applied_commands WHERE command_id = ?", (command_id,)
            ).fetchone()
            if seen:
                return 0
            db.execute(
                "INSERT INTO applied_commands (command_id, applied_utc) VALUES (?, ?)",
                (command_id, _utc_now()),
            )
            rows = db.execute(
                "SELECT window_id, start_s FROM windows "
                "WHERE log_id = ? AND label IS NULL",
                (log_id,),
            ).fetchall()
            if not rows:
                _LOGGER.info(
                    "log %s: verdict %s, no pending windows", log_id, command_id
                )
                return 0
            ids = [int(r[0]) for r in rows]
            if not confirmed:
                db.executemany(
                    "UPDATE windows SET label = 0, source = 'rejected' "
                    "WHERE window_id = ?",
                    [(i,) for i in ids],
                )
                changed = len(ids)
            elif t_offset_s is None:
                db.executemany(
                    "UPDATE windows SET label = 1, source = 'confirmed' "
                    "WHERE window_id = ?",
                    [(i,) for i in ids],
                )
                changed = len(ids)
            else:
                starts = np.array([float(r[1]) for r in rows])
                labels = label_windows(starts, float(t_offset_s))
                keep = [(i,) for i, lab in zip(ids, labels, strict=True) if lab == 1]
                drop = [(i,) for i, lab in zip(ids, labels, strict=True) if lab != 1]
                db.executemany(
                    "UPDATE windows SET label = 1, source = 'confirmed' "
                    "WHERE window_id = ?",
                    keep,
                )
                db.executemany("DELETE FROM windows WHERE window_id = ?", drop)
                changed = len(keep)
        _LOGGER.info(
            "log %s: crash %s, %d windows labelled",
            log_id,
            "confirmed" if confirmed else "rejected",
            changed,
        )
        return changed

    # -- reading -------------------------------------------------------------

    def counts(self) -> StoreCounts:
        """Return how many windows are stored, by label (consenting riders)."""
        rows = self._read(
            "SELECT label, COUNT(*) FROM windows WHERE rider_id NOT IN "
            "(SELECT rider_id FROM consent WHERE opted_out = 1) GROUP BY label"
        )
        by_label = {label: int(str(count)) for label, count in rows}
        return StoreCounts(
            by_label.get(1, 0), by_label.get(0, 0), by_label.get(None, 0)
        )

    def labelled(
        self,
    ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int8], list[str]]:
        """Return the labelled windows, their labels and log ids, oldest first.

        Windows of riders who opted out are never returned, even if a delete
        was interrupted.
        """
        rows = self._read(
            "SELECT data, label, log_id FROM windows WHERE label IS NOT NULL AND "
            "rider_id NOT IN (SELECT rider_id FROM consent WHERE opted_out = 1) "
            "ORDER BY window_id"
        )
        windows = np.empty((len(rows), *_WINDOW_SHAPE), dtype=np.float32)
        labels = np.empty(len(rows), dtype=np.int8)
        logs: list[str] = []
        for i, (data, label, log_id) in enumerate(rows):
            if not isinstance(data, bytes) or len(data) != _WINDOW_BYTES:
                raise WindowStoreError(
                    f"{self.path}: window {i} of log {log_id}: expected "
                    f"{_WINDOW_BYTES} bytes of float32"
                )
            windows[i] = np.frombuffer(data, dtype=np.float32).reshape(_WINDOW_SHAPE)
            labels[i] = int(str(label))
            logs.append(str(log_id))
        return windows, labels, logs


def _parse_time(text: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return datetime.min.replace(tzinfo=UTC)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
