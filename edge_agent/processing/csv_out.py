"""Write the processed CSV: vectorised text, gzip members compressed in threads.

Numbers are written with fixed decimals through Arrow's CSV writer: each float
column becomes a ``decimal64`` column whose buffer is the scaled int64 values
(no per-value Python), and NaN becomes an empty field. Each chunk of rows is
formatted and compressed in a worker thread as an independent gzip member
(both steps release the GIL); a concatenation of gzip members is one valid
gzip file (RFC 1952, section 2.2), readable by ``gzip``, ``zcat``, pandas.
Members are written in order, at most ``MAX_IN_FLIGHT`` chunks behind, so
memory stays bounded. The file appears under its final name only when closed
(written as ``.partial`` and renamed).
"""

from __future__ import annotations

import logging
import os
import time
import zlib
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import BinaryIO, Protocol, Self

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.csv as pa_csv
from isal import isal_zlib

from .errors import OutputWriteError

__all__ = [
    "DEFAULT_COMPRESSLEVEL",
    "DEFAULT_WRITER_THREADS",
    "Column",
    "CsvSink",
    "CsvSinkFactory",
    "GzipCsvWriter",
]

_LOGGER = logging.getLogger(__name__)

# zlib level 1 compresses sensor text about 2.3:1 at ~100 MB/s per core; level
# 6 gains ~15 % size for 3x the time (DESIGN.md: level 1 unless configured).
DEFAULT_COMPRESSLEVEL = 1
# One worker per core of a 2-core gateway; the orchestrating thread is mostly
# waiting on them or running NumPy, which releases the GIL too.
DEFAULT_WRITER_THREADS = 2
# Chunks formatted or compressed but not yet written; bounds memory to a few
# chunks of text (a 60 s chunk at 1 kHz is about 5 MB before compression).
MAX_IN_FLIGHT = 4

_GZIP_WBITS = 16 + zlib.MAX_WBITS
# ISA-L offers levels 0-3; a higher configured level falls back to zlib.
_ISAL_MAX_LEVEL = 3
# zlib's largest hash table: about 6 % faster at level 1 on sensor text, same
# format (any gzip reader), 128 KB more memory per compressor.
_GZIP_MEMLEVEL = 9
_DECIMAL_PRECISION = 18
# Arrow formats 1024 rows per batch by default; one batch per chunk (15,000
# rows at 1 kHz) formats about 20 % faster.
_WRITE_OPTIONS = pa_csv.WriteOptions(
    include_header=False, quoting_style="none", batch_size=65_536
)


@dataclass(frozen=True)
class Column:
    """One output column: its name and how its values are written.

    ``decimals`` >= 0 writes a float with that many decimals; ``kind`` says
    what the values are: ``"float"``, ``"scaled"`` (int64 already multiplied
    by 10**decimals), ``"int"`` or ``"timestamp_us"`` (int64 µs since the
    epoch, written as ``YYYY-MM-DD hh:mm:ss.ffffff``, UTC). A ``nullable``
    float column writes NaN as an empty field (others are never NaN).
    """

    name: str
    decimals: int = 0
    kind: str = "float"
    nullable: bool = False


class CsvSink(Protocol):
    """Where the pipeline's rows go (``GzipCsvWriter``, or a benchmark's)."""

    rows: int
    size_bytes: int
    thread_cpu_s: float  # CPU seconds spent outside the calling thread

    def write(self, values: dict[str, npt.NDArray[np.generic]]) -> None:
        """Take one chunk of rows (an array per column name)."""

    def close(self) -> None:
        """Finish the output; it exists under its final name afterwards."""

    def abort(self) -> None:
        """Drop everything written so far."""


# Builds a sink for an output path and its columns.
CsvSinkFactory = Callable[[Path, list[Column]], CsvSink]


def _decimal_array(
    scaled: npt.NDArray[np.int64],
    decimals: int,
    valid: npt.NDArray[np.bool_] | None,
) -> pa.Array:
    # decimal64 stores the scaled value as a little-endian int64, so the
    # column is the NumPy buffer itself (and formats faster than decimal128).
    bitmap = None if valid is None else pa.array(valid, type=pa.bool_()).buffers()[1]
    return pa.Array.from_buffers(
        pa.decimal64(_DECIMAL_PRECISION, decimals),
        len(scaled),
        [bitmap, pa.py_buffer(np.ascontiguousarray(scaled, dtype=np.int64))],
        null_count=-1 if valid is not None else 0,
    )


def _to_arrow(column: Column, values: npt.NDArray[np.generic]) -> pa.Array:
    if column.kind == "scaled":
        return _decimal_array(
            values.astype(np.int64, copy=False), column.decimals, None
        )
    if column.kind == "int":
        return pa.array(values)
    if column.kind == "timestamp_us":
        return pa.array(values.astype(np.int64, copy=False), type=pa.timestamp("us"))
    scale = 10.0**column.decimals
    floats = np.asarray(values)
    # float32 holds every integer below 2**24 exactly: sensor values scaled
    # to their decimals stay far below, and float32 math is twice as fast.
    if floats.dtype != np.float32 or np.abs(floats).max(initial=0.0) * scale >= 2**24:
        floats = floats.astype(np.float64)
    scaled = floats * floats.dtype.type(scale)
    np.rint(scaled, out=scaled)
    valid = None
    if column.nullable:
        valid = np.isfinite(scaled)
        if valid.all():
            valid = None
        else:
            scaled[~valid] = 0.0
    return _decimal_array(scaled.astype(np.int64), column.decimals, valid)


def _compress(data: memoryview, level: int) -> bytes:
    """Return ``data`` as one gzip member (ISA-L where it can, else zlib)."""
    # ISA-L's deflate writes the same gzip format about 4x faster at level 1.
    if level <= _ISAL_MAX_LEVEL:
        fast = isal_zlib.compressobj(level, isal_zlib.DEFLATED, _GZIP_WBITS)
        return bytes(fast.compress(data) + fast.flush())
    compressor = zlib.compressobj(level, zlib.DEFLATED, _GZIP_WBITS, _GZIP_MEMLEVEL)
    return compressor.compress(data) + compressor.flush()


def _format_and_compress(
    columns: list[Column],
    values: dict[str, npt.NDArray[np.generic]],
    header: bytes,
    level: int,
) -> tuple[bytes, float]:
    """Return one gzip member holding ``header`` and the rows, and the CPU
    seconds it took (runs in a worker thread)."""
    started = time.thread_time()
    arrays = [_to_arrow(c, values[c.name]) for c in columns]
    table = pa.Table.from_arrays(arrays, names=[c.name for c in columns])
    # An Arrow buffer stream, not io.BytesIO: Arrow writes to it without
    # calling back into Python (a third faster, and no GIL traffic).
    text = pa.BufferOutputStream()
    text.write(header)
    pa_csv.write_csv(table, text, _WRITE_OPTIONS)
    member = _compress(memoryview(text.getvalue()), level)
    return member, time.thread_time() - started


class GzipCsvWriter:
    """Append row chunks to a gzip CSV file (see module doc)."""

    def __init__(
        self,
        path: Path,
        columns: list[Column],
        compresslevel: int = DEFAULT_COMPRESSLEVEL,
        threads: int = DEFAULT_WRITER_THREADS,
        fsync: bool = True,
    ) -> None:
        self.path = Path(path)
        self.columns = columns
        self.rows = 0
        self.size_bytes = 0
        self._level = compresslevel
        self._fsync = fsync
        self._partial = self.path.with_name(self.path.name + ".partial")
        self._header = (",".join(c.name for c in columns) + "\n").encode("ascii")
        self._pool = ThreadPoolExecutor(max(1, threads), "csv-gzip")
        self._in_flight: deque[Future[tuple[bytes, float]]] = deque()
        # CPU seconds the worker threads spent formatting and compressing.
        self.thread_cpu_s = 0.0
        try:
            self._stream: BinaryIO = open(self._partial, "wb")  # noqa: SIM115
        except OSError as exc:
            self._pool.shutdown()
            raise OutputWriteError(str(self.path), "open", str(exc)) from exc
        self._closed = False

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    def write(self, values: dict[str, npt.NDArray[np.generic]]) -> None:
        """Queue one chunk of rows: an array per column name, equal lengths.

        The arrays must not change afterwards (a worker reads them later).
        """
        n = len(values[self.columns[0].name])
        if n == 0:
            return
        header = self._header if self.rows == 0 else b""
        self.rows += n
        self._in_flight.append(
            self._pool.submit(
                _format_and_compress, self.columns, values, header, self._level
            )
        )
        try:
            while len(self._in_flight) > MAX_IN_FLIGHT:
                self._write_member(self._in_flight.popleft().result())
        except OSError as exc:
            self.abort()
            raise OutputWriteError(str(self.path), "write", str(exc)) from exc

    def close(self) -> None:
        """Write what is queued, flush (and fsync) and move into place."""
        if self._closed:
            return
        try:
            if self.rows == 0:
                empty: dict[str, npt.NDArray[np.generic]] = {
                    c.name: np.empty(0, dtype=np.int64) for c in self.columns
                }
                self._in_flight.append(
                    self._pool.submit(
                        _format_and_compress,
                        self.columns,
                        empty,
                        self._header,
                        self._level,
                    )
                )
            while self._in_flight:
                self._write_member(self._in_flight.popleft().result())
            self._stream.flush()
            if self._fsync:
                os.fsync(self._stream.fileno())
            self._stream.close()
            os.replace(self._partial, self.path)
        except OSError as exc:
            self.abort()
            raise OutputWriteError(str(self.path), "write", str(exc)) from exc
        finally:
            self._pool.shutdown()
            self._closed = True
        _LOGGER.debug(
            "%s: wrote %d rows, %d bytes", self.path, self.rows, self.size_bytes
        )

    def abort(self) -> None:
        """Drop queued work and remove the partial file."""
        for future in self._in_flight:
            future.cancel()
        self._in_flight.clear()
        self._pool.shutdown(wait=True)
        self._stream.close()
        self._partial.unlink(missing_ok=True)
        self._closed = True

    def _write_member(self, done: tuple[bytes, float]) -> None:
        member, cpu_s = done
        self._stream.write(member)
        self.size_bytes += len(member)
        self.thread_cpu_s += cpu_s
