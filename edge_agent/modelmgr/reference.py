"""Reference crash windows shipped beside each published model (NumPy only).

The cloud picks a few crashes of its validation rides that the new model
detects and ships their windows as a TUF target (``reference-crashes.npz``).
A gateway runs the new model on them before it swaps: every reference crash
must still be detected with the model's own decision rule, which catches a
model file that converts or runs differently on that gateway's runtime.

File format (``np.savez_compressed``, read with ``allow_pickle=False``)::

    schema     0-d str   "model-reference-crashes/1"
    windows    (m, 200, 6) float32, contract v1 windows
    crash      (m,) int32, which reference crash each window belongs to
               (windows of one crash are consecutive, in time order)
    kind       (c,) str, the crash kind of each reference crash (for logs)

Errors: ``ReferenceFileError`` naming the file and what is wrong.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from models import contract

__all__ = [
    "REFERENCE_SCHEMA",
    "ReferenceCrashes",
    "ReferenceFileError",
    "read_reference_crashes",
    "write_reference_crashes",
]

REFERENCE_SCHEMA = "model-reference-crashes/1"
# More would make the shadow test slow on a gateway for no gain: each crash
# is a handful of windows, and eight cover the synthesiser's crash kinds.
MAX_REFERENCE_CRASHES = 16


class ReferenceFileError(ValueError):
    """A reference crash file is malformed."""


@dataclass(frozen=True)
class ReferenceCrashes:
    """Windows of a few known crashes, grouped by crash."""

    windows: npt.NDArray[np.float32]
    crash: npt.NDArray[np.int32]
    kinds: tuple[str, ...]

    @property
    def count(self) -> int:
        """Return how many reference crashes there are."""
        return len(self.kinds)

    def groups(self) -> list[npt.NDArray[np.intp]]:
        """Return the window indices of each crash, in crash order."""
        return [np.flatnonzero(self.crash == index) for index in range(self.count)]


def write_reference_crashes(reference: ReferenceCrashes) -> bytes:
    """Return the ``.npz`` bytes of ``reference``."""
    buffer = io.BytesIO()
    np.savez_compressed(
        buffer,
        schema=np.array(REFERENCE_SCHEMA),
        windows=np.asarray(reference.windows, dtype=np.float32),
        crash=np.asarray(reference.crash, dtype=np.int32),
        kind=np.array(reference.kinds, dtype=str),
    )
    return buffer.getvalue()


def read_reference_crashes(data: bytes, source: str) -> ReferenceCrashes:
    """Parse reference crash bytes; ``source`` names the file in errors.

    Raises:
        ReferenceFileError: not an ``.npz`` of this schema, or arrays of the
            wrong shape, type or grouping.
    """
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as arrays:
            found = {name: arrays[name] for name in arrays.files}
    except (OSError, ValueError, EOFError) as exc:
        raise ReferenceFileError(f"{source}: not a readable .npz file: {exc}") from exc
    missing = {"schema", "windows", "crash", "kind"} - set(found)
    if missing:
        raise ReferenceFileError(f"{source}: arrays {sorted(missing)} are missing")
    schema = str(found["schema"])
    if schema != REFERENCE_SCHEMA:
        raise ReferenceFileError(
            f"{source}: schema: expected {REFERENCE_SCHEMA!r}, found {schema!r}"
        )
    windows = found["windows"]
    shape = (contract.WINDOW_SAMPLES, len(contract.INPUT_CHANNELS))
    if windows.dtype != np.float32 or windows.ndim != 3 or windows.shape[1:] != shape:
        raise ReferenceFileError(
            f"{source}: windows: expected float32 (m, {shape[0]}, {shape[1]}), "
            f"found {windows.dtype} {windows.shape}"
        )
    crash = found["crash"]
    kinds = tuple(str(kind) for kind in np.atleast_1d(found["kind"]))
    if crash.shape != (len(windows),) or not np.issubdtype(crash.dtype, np.integer):
        raise ReferenceFileError(
            f"{source}: crash: expected {len(windows)} integers, found "
            f"{crash.dtype} {crash.shape}"
        )
    if not 1 <= len(kinds) <= MAX_REFERENCE_CRASHES:
        raise ReferenceFileError(
            f"{source}: kind: expected 1..{MAX_REFERENCE_CRASHES} crashes, "
            f"found {len(kinds)}"
        )
    if len(crash) and (
        np.any(np.diff(crash) < 0) or set(crash) != set(range(len(kinds)))
    ):
        raise ReferenceFileError(
            f"{source}: crash: windows must be grouped 0..{len(kinds) - 1} in order"
        )
    if not np.all(np.isfinite(windows)):
        raise ReferenceFileError(f"{source}: windows: non-finite values")
    return ReferenceCrashes(windows, crash.astype(np.int32), kinds)
