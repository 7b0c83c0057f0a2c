"""Read a suit log (format v1) as a stream of SI-unit source chunks.

Blocks are decoded one at a time by ``firmware_bridge.logformat.LogReader``;
a few IMU blocks become one chunk together with the GNSS blocks among them
(the firmware writes a fix in the block after the IMU block covering its
time, so every fix lands in the chunk of its own time or the next one, and
its counter is unwrapped against the IMU sample just before it; airbag
event records are placed the same way and ride along as labels). Raw
int16 counts are converted with the header's full scales; a count at either
end of the int16 range marks the sample saturated.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import BinaryIO, Self

import numpy as np
import numpy.typing as npt

from firmware_bridge.logformat import (
    RAW_FULL_SCALE_COUNTS,
    BlockType,
    LogFormatError,
    LogReader,
)
from firmware_bridge.logformat.records import FILE_MAGIC, EventKind

from .clean import CounterUnwrapper, place_counter
from .errors import InputReadError, map_log_format_error
from .samples import (
    STANDARD_GRAVITY_MPS2,
    GnssFixes,
    SampleChunk,
    SourceChunk,
    StreamInfo,
)

__all__ = ["SuitLogSource", "is_suit_log"]

_LOGGER = logging.getLogger(__name__)

# IMU blocks converted together: one block (1,024 samples) per NumPy call
# spends more time in call overhead than in work; 8 blocks amortise it.
GROUP_SAMPLES = 8192
_INT16_MIN = -32768
_INT16_MAX = 32767


def is_suit_log(path: Path) -> bool:
    """Return True when the file starts with the suit log magic."""
    try:
        with open(path, "rb") as stream:
            return stream.read(len(FILE_MAGIC)) == FILE_MAGIC
    except OSError:
        return False


def _scale(full_scale: float, unit_factor: float) -> np.float32:
    return np.float32(full_scale * unit_factor / RAW_FULL_SCALE_COUNTS)


class SuitLogSource:
    """A suit log opened for streaming (use as a context manager)."""

    def __init__(self, path: Path, log_id: str | None = None) -> None:
        """Open ``path`` and read its header.

        Raises:
            InputReadError: the file cannot be opened.
            CorruptLogError: (a subclass) the header is not a valid v1 header.
        """
        self.path = Path(path)
        source = str(self.path)
        try:
            self._stream: BinaryIO = open(self.path, "rb")  # noqa: SIM115
        except OSError as exc:
            raise InputReadError(source, "open", str(exc)) from exc
        try:
            self._reader = LogReader(self._stream, source=source)
        except LogFormatError as exc:
            self._stream.close()
            raise map_log_format_error(exc) from exc
        header = self._reader.header
        self.header = header
        self.info = StreamInfo(
            source=source,
            log_id=log_id or header.log_id,
            kind="suit-log",
            sample_rate_hz=header.sample_rate_hz,
            start_utc_us=header.start_utc_us,
            clock_origin_us=header.counter_start_us,
            has_mag=header.has_mag,
            has_gnss=True,
            accel_full_scale_g=float(header.accel_full_scale_g),
            gyro_full_scale_dps=float(header.gyro_full_scale_dps),
            mag_full_scale_ut=header.mag_full_scale_ut,
            suit_serial=header.suit_serial,
        )
        self._acc_scale = _scale(header.accel_full_scale_g, STANDARD_GRAVITY_MPS2)
        self._gyr_scale = _scale(header.gyro_full_scale_dps, np.pi / 180.0)
        self._mag_scale = _scale(header.mag_full_scale_ut or 0, 1.0)
        self._unwrapper = CounterUnwrapper(header.counter_start_us)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the file."""
        self._stream.close()

    def chunks(self) -> Iterator[SourceChunk]:
        """Yield chunks of about ``GROUP_SAMPLES`` samples with their fixes.

        Raises:
            CorruptLogError: (a subclass) a block is truncated, fails its CRC
                or has an impossible length; names the file and byte offset.
        """
        imu: list[npt.NDArray[np.void]] = []
        # GNSS blocks, each with the number of IMU samples read before it.
        gnss: list[tuple[int, npt.NDArray[np.void]]] = []
        events: list[tuple[int, npt.NDArray[np.void]]] = []
        count = 0
        try:
            for block in self._reader.blocks():
                if block.kind == BlockType.IMU:
                    if count >= GROUP_SAMPLES:
                        yield self._group(imu, gnss, events)
                        imu, gnss, events, count = [], [], [], 0
                    imu.append(block.records)
                    count += len(block.records)
                elif block.kind == BlockType.GNSS:
                    gnss.append((count, block.records))
                elif block.kind == BlockType.EVENT:
                    events.append((count, block.records))
        except LogFormatError as exc:
            raise map_log_format_error(exc) from exc
        if imu or gnss or events:
            yield self._group(imu, gnss, events)

    def _group(
        self,
        imu: list[npt.NDArray[np.void]],
        gnss: list[tuple[int, npt.NDArray[np.void]]],
        events: list[tuple[int, npt.NDArray[np.void]]] | None = None,
    ) -> SourceChunk:
        """Convert a group of IMU blocks and the GNSS and event blocks among them."""
        wraps_before = self._unwrapper.wraps
        reference = start_reference = self._unwrapper.reference
        if imu:
            records = np.concatenate(imu) if len(imu) > 1 else imu[0]
            samples = self._samples(records)
        else:
            records = None
            samples = SampleChunk.empty(self.header.has_mag)
        fixes = []
        for after, gnss_records in gnss:
            # A fix is placed against the last IMU sample written before it.
            if after > 0 and records is not None:
                reference = (
                    int(records["t_us"][after - 1]),
                    int(samples.t_us[after - 1]),
                )
            fixes.append(self._fixes(gnss_records, reference))
        airbags = [np.empty(0, dtype=np.int64)]
        for after, event_records in events or []:
            deployed = event_records[event_records["kind"] == EventKind.AIRBAG_DEPLOYED]
            if not len(deployed):
                continue
            # Placed like a fix: against the IMU sample written just before it.
            placed_from = start_reference
            if after > 0 and records is not None:
                placed_from = (
                    int(records["t_us"][after - 1]),
                    int(samples.t_us[after - 1]),
                )
            airbags.append(place_counter(deployed["t_us"], *placed_from))
        return SourceChunk(
            samples,
            GnssFixes.concat(fixes),
            counter_wraps=self._unwrapper.wraps - wraps_before,
            airbag_t_us=np.concatenate(airbags),
        )

    def _samples(self, records: npt.NDArray[np.void]) -> SampleChunk:
        acc_raw = records["acc"]
        gyr_raw = records["gyr"]
        saturated = np.zeros(len(records), dtype=np.bool_)
        for raw in (acc_raw, gyr_raw):
            # Most groups never touch the limits: two reductions say so.
            if raw.min(initial=0) == _INT16_MIN or raw.max(initial=0) == _INT16_MAX:
                saturated |= ((raw == _INT16_MIN) | (raw == _INT16_MAX)).any(axis=1)
        mag = None
        if self.header.has_mag:
            mag = records["mag"].astype(np.float32) * self._mag_scale
        return SampleChunk(
            t_us=self._unwrapper.unwrap(records["t_us"]),
            acc_mps2=acc_raw.astype(np.float32) * self._acc_scale,
            gyr_rads=gyr_raw.astype(np.float32) * self._gyr_scale,
            mag_ut=mag,
            saturated=saturated,
        )

    def _fixes(
        self, records: npt.NDArray[np.void], reference: tuple[int, int]
    ) -> GnssFixes:
        valid = records[records["fix"] > 0]
        return GnssFixes(
            t_us=place_counter(valid["t_us"], *reference),
            lat_deg=valid["lat_e7"] / 1e7,
            lon_deg=valid["lon_e7"] / 1e7,
            alt_m=valid["alt_mm"] / 1e3,
            speed_mps=valid["speed_mm_s"] / 1e3,
            course_deg=valid["heading_cdeg"] / 100.0,
        )
