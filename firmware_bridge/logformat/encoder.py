"""Writer for suit log format v1 (what the suit firmware does, in Python).

Samples are buffered and written as blocks of ``samples_per_block`` records.
Event and GNSS records are written in the block that follows the IMU block
covering their time, so a reader can unwrap every counter against the IMU
stream it has just seen (see ``docs/log-format.md``).
"""

from __future__ import annotations

import zlib
from typing import BinaryIO, Self

import numpy as np
import numpy.typing as npt

from .records import (
    BLOCK_HEADER,
    BLOCK_MAGIC,
    EVENT_DTYPE,
    GNSS_DTYPE,
    BlockType,
    LogHeader,
    imu_dtype,
)

__all__ = ["LogWriter"]

# One second at 1 kHz: small enough that a corrupt block loses little, large
# enough that per-block overhead (20 bytes) stays under 0.1 % of the payload.
DEFAULT_SAMPLES_PER_BLOCK = 1024


class LogWriter:
    """Append samples, events and GNSS fixes to a v1 log stream."""

    def __init__(
        self,
        stream: BinaryIO,
        header: LogHeader,
        samples_per_block: int = DEFAULT_SAMPLES_PER_BLOCK,
    ) -> None:
        self._stream = stream
        self.header = header
        self._samples_per_block = samples_per_block
        self._imu_dtype = imu_dtype(header.channels)
        self._pending_imu: list[npt.NDArray[np.void]] = []
        self._pending_imu_count = 0
        self._pending_events: list[npt.NDArray[np.void]] = []
        self._pending_gnss: list[npt.NDArray[np.void]] = []
        self._sequence = 0
        self.bytes_written = 0
        self._write(header.pack())

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _write(self, data: bytes) -> None:
        self._stream.write(data)
        self.bytes_written += len(data)

    def write_block(self, kind: int, records: npt.NDArray[np.void]) -> None:
        """Frame and write one block of already-packed records."""
        payload = records.tobytes()
        head = BLOCK_HEADER.pack(
            BLOCK_MAGIC, int(kind), 0, self._sequence, len(records), len(payload)
        )
        crc = zlib.crc32(payload, zlib.crc32(head))
        self._write(head + payload + crc.to_bytes(4, "little"))
        self._sequence += 1

    def write_imu(
        self,
        t_us: npt.ArrayLike,
        acc_raw: npt.ArrayLike,
        gyr_raw: npt.ArrayLike,
        mag_raw: npt.ArrayLike | None = None,
    ) -> None:
        """Append IMU samples given as raw counts (see ``physical_to_raw``)."""
        t = np.asarray(t_us, dtype=np.uint32)
        records = np.empty(len(t), dtype=self._imu_dtype)
        records["t_us"] = t
        records["acc"] = acc_raw
        records["gyr"] = gyr_raw
        if self.header.has_mag:
            if mag_raw is None:
                raise ValueError("header declares a magnetometer; mag_raw is missing")
            records["mag"] = mag_raw
        self._pending_imu.append(records)
        self._pending_imu_count += len(records)
        while self._pending_imu_count >= self._samples_per_block:
            self._flush_imu(self._samples_per_block)

    def write_events(
        self, t_us: npt.ArrayLike, kind: npt.ArrayLike, value: npt.ArrayLike = 1
    ) -> None:
        """Queue event records; they follow the next IMU block written."""
        t = np.atleast_1d(np.asarray(t_us, dtype=np.uint32))
        records = np.zeros(len(t), dtype=EVENT_DTYPE)
        records["t_us"] = t
        records["kind"] = kind
        records["value"] = value
        self._pending_events.append(records)

    def write_gnss(self, records: npt.NDArray[np.void]) -> None:
        """Queue GNSS records (``GNSS_DTYPE``); they follow the next IMU block."""
        self._pending_gnss.append(np.asarray(records, dtype=GNSS_DTYPE))

    def _flush_imu(self, count: int) -> None:
        joined = np.concatenate(self._pending_imu) if self._pending_imu else None
        if joined is None or count == 0:
            return
        self.write_block(BlockType.IMU, joined[:count])
        rest = joined[count:]
        self._pending_imu = [rest] if len(rest) else []
        self._pending_imu_count = len(rest)
        self._flush_side_records()

    def _flush_side_records(self) -> None:
        for kind, pending in (
            (BlockType.EVENT, self._pending_events),
            (BlockType.GNSS, self._pending_gnss),
        ):
            if pending:
                self.write_block(kind, np.concatenate(pending))
                pending.clear()

    def close(self) -> None:
        """Write what is buffered and flush the stream (the caller closes it)."""
        self._flush_imu(self._pending_imu_count)
        self._flush_side_records()
        self._stream.flush()
