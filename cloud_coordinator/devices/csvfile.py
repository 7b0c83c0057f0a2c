"""The gzip CSV of one device window: build it, and read one back to merge.

Columns: ``t_unix_us`` (integer µs since the epoch, the row's identity),
``t_utc`` (``YYYY-MM-DD hh:mm:ss.ffffff``, as in the gateway's CSV), then
every reading column of the window in name order (``acc_x_mps2``, ...),
empty where a sample lacks that reading. Rows are sorted by time and values
written in Python's shortest round-trip form, and the gzip header carries
no time, so the same samples always give the same bytes (and SHA-256):
a retried flush rewrites an identical object.

Windows are small (one device, a few minutes), so the standard csv module
is fast enough here; the gateway's large logs use the vectorised writer.
"""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import io
from collections.abc import Mapping

__all__ = ["WindowRows", "decode_window", "encode_window", "format_value"]

TIME_COLUMNS = ("t_unix_us", "t_utc")
# Fast gzip: these objects are small and written often.
GZIP_LEVEL = 1
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)

# Rows of one window: time (µs) -> column -> formatted value.
WindowRows = dict[int, dict[str, str]]


def format_value(value: float) -> str:
    """Return a value as written to the CSV (shortest exact form)."""
    return repr(float(value))


def _utc_text(t_us: int) -> str:
    moment = _EPOCH + dt.timedelta(microseconds=t_us)
    return moment.strftime("%Y-%m-%d %H:%M:%S.%f")


def encode_window(rows: Mapping[int, Mapping[str, str]]) -> bytes:
    """Return the gzip CSV of ``rows`` (deterministic bytes)."""
    columns = sorted({column for row in rows.values() for column in row})
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow((*TIME_COLUMNS, *columns))
    for t_us in sorted(rows):
        row = rows[t_us]
        writer.writerow(
            (t_us, _utc_text(t_us), *(row.get(column, "") for column in columns))
        )
    return gzip.compress(text.getvalue().encode(), compresslevel=GZIP_LEVEL, mtime=0)


def decode_window(data: bytes, where: str) -> WindowRows:
    """Return the rows of a window object written by :func:`encode_window`.

    Raises:
        ValueError: not such an object (the message names ``where``).
    """
    try:
        text = gzip.decompress(data).decode()
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise ValueError(f"{where}: not a gzip UTF-8 CSV: {exc}") from exc
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    if header is None or tuple(header[:2]) != TIME_COLUMNS:
        raise ValueError(f"{where}: header must start with {TIME_COLUMNS}")
    columns = header[2:]
    rows: WindowRows = {}
    for line, record in enumerate(reader, start=2):
        if len(record) != len(header):
            raise ValueError(
                f"{where}:{line}: {len(record)} fields, expected {len(header)}"
            )
        try:
            t_us = int(record[0])
        except ValueError as exc:
            raise ValueError(f"{where}:{line}: t_unix_us {record[0]!r}") from exc
        rows[t_us] = {
            column: value
            for column, value in zip(columns, record[2:], strict=True)
            if value != ""
        }
    return rows
