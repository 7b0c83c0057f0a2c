"""Read a CSV export as a stream of SI-unit source chunks for the pipeline.

The file is read in blocks by Arrow's streaming CSV reader; nothing is loaded
whole. Layout is detected, units are not: the delimiter is the most frequent
of ``, ; TAB |`` in the header line, and a decimal comma is recognised when
the delimiter is not a comma and the first data rows hold numbers like
``1,5``. A UTF-8 byte-order mark is skipped.

Values are read as text and converted in bulk: a value that is empty, NaN,
not a number or beyond any sensor (``MAX_ABS_*``) makes its row rejected
(counted in ``rejected_rows``) when the row's time, acceleration or angular
rate needs it; a GNSS value that is not a
number just means "no fix on this row". Rows with the wrong number of fields
(a truncated last line) are rejected too. GNSS values an export repeats on
every row until the next fix are passed on once, at the first row.

The sample rate is estimated from the median time step of the first block
(irregular loggers: the typical step, not the mean). Saturation cannot be
flagged: an export does not say its sensors' full scale.
"""

from __future__ import annotations

import csv
import hashlib
import logging
import re
from collections.abc import Iterator, Mapping
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv

from edge_agent.processing.errors import (
    CsvValueError,
    InputReadError,
    MissingUnitError,
    NoSamplesError,
)
from edge_agent.processing.samples import (
    GnssFixes,
    SampleChunk,
    SourceChunk,
    StreamInfo,
)

from .columns import ColumnMap, map_columns
from .units import (
    ACCEL_UNITS,
    GYRO_UNITS,
    MAG_UNITS,
    SPEED_UNITS,
    TIME_UNITS,
    UnitOptions,
    normalise_unit,
)

__all__ = ["CsvSource"]

_LOGGER = logging.getLogger(__name__)

# Arrow reads this much text per block: about 20,000 rows of a 10-column
# export, so memory stays small and the rate estimate sees enough steps.
BLOCK_SIZE_BYTES = 1 << 20
# Beyond these a value is corruption, not a reading: 10,000 g, 570,000 deg/s
# (far past any MEMS full scale), 100 T, or a time stamp past year 2262.
MAX_ABS_ACC_MPS2 = 1e5
MAX_ABS_GYR_RADS = 1e4
MAX_ABS_MAG_UT = 1e8
MAX_ABS_TIME_US = 2.0**62
_DELIMITERS = (",", ";", "\t", "|")
_NUMBER = r"^\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*$"
_DECIMAL_COMMA = re.compile(r"^\s*-?\d+,\d+\s*$")
_AXES = ("x", "y", "z")


def _file_log_id(path: Path) -> str:
    """Return a log id derived from the file's bytes (same file, same id)."""
    with open(path, "rb") as stream:
        return hashlib.file_digest(stream, "sha256").hexdigest()[:32]


class CsvSource:
    """A CSV export opened for streaming into the pipeline."""

    def __init__(
        self,
        path: Path,
        units: UnitOptions,
        overrides: Mapping[str, str] | None = None,
        log_id: str | None = None,
    ) -> None:
        """Read the header, map columns, resolve units and estimate the rate.

        Raises:
            InputReadError: the file cannot be read.
            CsvValueError: the header or layout cannot be parsed.
            MissingColumnError: a required column is absent.
            MissingUnitError: a unit is neither in the header nor in ``units``.
            NoSamplesError: the first block holds no valid row.
        """
        self.path = Path(path)
        self.source = str(self.path)
        self._rejected_ragged = 0
        self._ragged_reported = 0
        try:
            head = self._read_head()
            log_id = log_id or _file_log_id(self.path)
        except OSError as exc:
            raise InputReadError(self.source, "open", str(exc)) from exc
        self.headers, self._delimiter, self._decimal_comma = self._layout(head)
        self.columns = map_columns(self.headers, overrides or {}, self.source)
        self._factors = self._resolve_units(self.columns, units)
        self._unix = units.time_reference == "unix"
        self._last_fix: tuple[float, float] | None = None
        self._rows_read = 0

        # The first block gives the sample rate; it is replayed by chunks().
        self._batches = self._open_batches()
        self._first = next(self._batches, None)
        rate_hz = self._estimate_rate(self._first)
        start_utc_us = 0 if self._unix else None
        self.info = StreamInfo(
            source=self.source,
            log_id=log_id,
            kind="csv",
            sample_rate_hz=rate_hz,
            start_utc_us=start_utc_us,
            clock_origin_us=0,
            has_mag=self.columns.has_mag,
            has_gnss=self.columns.has_gnss,
        )

    # -- layout and units ----------------------------------------------------

    def _read_head(self) -> list[str]:
        with open(self.path, encoding="utf-8-sig", errors="replace") as stream:
            return [line for _, line in zip(range(6), stream, strict=False)]

    def _layout(self, head: list[str]) -> tuple[list[str], str, bool]:
        if not head or not head[0].strip():
            raise CsvValueError(self.source, "line 1", "empty file, expected a header")
        header_line = head[0]
        delimiter = max(_DELIMITERS, key=header_line.count)
        if header_line.count(delimiter) == 0:
            raise CsvValueError(
                self.source,
                "line 1",
                f"no delimiter (one of {_DELIMITERS!r}) in header {header_line!r}",
            )
        headers = next(csv.reader([header_line], delimiter=delimiter))
        decimal_comma = False
        if delimiter != ",":
            for line in head[1:]:
                fields = line.rstrip("\r\n").split(delimiter)
                if any(_DECIMAL_COMMA.match(f) for f in fields):
                    decimal_comma = True
                    break
        return [h.strip() for h in headers], delimiter, decimal_comma

    def _resolve_units(
        self, columns: ColumnMap, units: UnitOptions
    ) -> dict[str, float]:
        """Return the factor to the pipeline's unit for every mapped field."""
        kinds = {
            "time": ("time_unit", units.time_unit, TIME_UNITS),
            "acc": ("accel_unit", units.accel_unit, ACCEL_UNITS),
            "gyr": ("gyro_unit", units.gyro_unit, GYRO_UNITS),
            "mag": ("mag_unit", units.mag_unit, MAG_UNITS),
            "speed": ("speed_unit", units.speed_unit, SPEED_UNITS),
        }
        factors: dict[str, float] = {"lat": 1.0, "lon": 1.0, "alt": 1.0}
        for field, column in columns.columns.items():
            kind = field.split("_")[0]
            if kind not in kinds:
                if column.unit not in (None, "deg", "m"):
                    raise CsvValueError(
                        self.source,
                        f"column '{column.header}'",
                        f"unit '{column.unit}' is not one for {field}",
                    )
                continue
            option, given, table = kinds[kind]
            given_unit = normalise_unit(given) if given else None
            unit = column.unit or given_unit
            if unit is None:
                raise MissingUnitError(
                    self.source,
                    f"column '{column.header}'",
                    f"unit of {field} is not declared in the header; give "
                    f"{option} (--{option.replace('_', '-')}) as one of "
                    f"{sorted(table)}",
                )
            if unit not in table:
                raise CsvValueError(
                    self.source,
                    f"column '{column.header}'",
                    f"unit '{unit}' is not one for {field}; expected one of "
                    f"{sorted(table)}",
                )
            if column.unit and given_unit and column.unit != given_unit:
                raise CsvValueError(
                    self.source,
                    f"column '{column.header}'",
                    f"header declares '{column.unit}' but {option} says '{given_unit}'",
                )
            factors[field] = table[unit]
        return factors

    # -- reading -------------------------------------------------------------

    def _open_batches(self) -> Iterator[pa.RecordBatch]:
        names = [f"c{i}" for i in range(len(self.headers))]
        wanted = {f"c{c.index}": pa.string() for c in self.columns.columns.values()}

        def ragged(row: pa_csv.InvalidRow) -> str:
            self._rejected_ragged += 1
            return "skip"

        try:
            reader = pa_csv.open_csv(
                self.path,
                read_options=pa_csv.ReadOptions(
                    column_names=names, skip_rows=1, block_size=BLOCK_SIZE_BYTES
                ),
                parse_options=pa_csv.ParseOptions(
                    delimiter=self._delimiter, invalid_row_handler=ragged
                ),
                convert_options=pa_csv.ConvertOptions(
                    column_types=wanted,
                    include_columns=list(wanted),
                    strings_can_be_null=True,
                ),
            )
            yield from reader
        except pa.ArrowInvalid as exc:
            raise CsvValueError(self.source, "data", str(exc)) from exc
        except OSError as exc:
            raise InputReadError(self.source, "read", str(exc)) from exc

    def _numbers(self, batch: pa.RecordBatch, field: str) -> npt.NDArray[np.float64]:
        """Return a column as float64, NaN where it is not a number."""
        text = batch.column(f"c{self.columns.columns[field].index}")
        if self._decimal_comma:
            text = pc.replace_substring(text, ",", ".")
        valid = pc.fill_null(pc.match_substring_regex(text, _NUMBER), False)
        numbers = pc.cast(pc.if_else(valid, text, None), pa.float64())
        return np.asarray(numbers.to_numpy(zero_copy_only=False), dtype=np.float64)

    def _triple(self, batch: pa.RecordBatch, kind: str) -> npt.NDArray[np.float64]:
        """Return the three axes of ``kind`` in SI units, each with its unit."""
        axes = [
            self._numbers(batch, f"{kind}_{a}") * self._factors[f"{kind}_{a}"]
            for a in _AXES
        ]
        return np.stack(axes, axis=1)

    def _estimate_rate(self, batch: pa.RecordBatch | None) -> float:
        if batch is None or batch.num_rows == 0:
            raise NoSamplesError(self.source, "line 2", "no data rows")
        t = self._numbers(batch, "time")
        if not np.isfinite(t).any():
            column = self.columns.columns["time"]
            first = batch.column(f"c{column.index}")[0].as_py()
            raise CsvValueError(
                self.source,
                f"column '{column.header}'",
                f"time stamps must be numbers (seconds, ms, us or ns), found "
                f"{first!r} in the first row",
            )
        steps = np.diff(t[np.isfinite(t)])
        steps = steps[steps > 0]
        if len(steps) == 0:
            raise NoSamplesError(
                self.source, "first rows", "fewer than two distinct time stamps"
            )
        median_step_us = float(np.median(steps)) * self._factors["time"]
        rate_hz = 1e6 / median_step_us
        # Three significant digits: 99.97 Hz from jittery stamps is 100 Hz.
        return float(f"{rate_hz:.3g}") if rate_hz < 1000 else round(rate_hz)

    def chunks(self) -> Iterator[SourceChunk]:
        """Yield one chunk per block of the file.

        Raises:
            CsvValueError: the reader fails on the layout of a block.
            InputReadError: the file cannot be read.
        """
        if self._first is not None:
            yield self._convert(self._first)
            self._first = None
        for batch in self._batches:
            yield self._convert(batch)
        if self._rejected_ragged:
            _LOGGER.warning(
                "%s: %d rows with a wrong number of fields rejected",
                self.source,
                self._rejected_ragged,
            )

    def _convert(self, batch: pa.RecordBatch) -> SourceChunk:
        # The reader calls the ragged-row handler while it reads the batch.
        ragged = self._rejected_ragged - self._ragged_reported
        self._ragged_reported = self._rejected_ragged
        f = self._factors
        time_raw = self._numbers(batch, "time")
        acc = self._triple(batch, "acc")
        gyr = self._triple(batch, "gyr")
        mag = None
        if self.columns.has_mag:
            mag = self._triple(batch, "mag")

        # A row needs its time, acceleration and angular rate, each a number
        # a sensor can produce (a corrupt 1e300 is no reading).
        ok = np.abs(time_raw * f["time"]) < MAX_ABS_TIME_US
        ok &= (np.abs(acc) < MAX_ABS_ACC_MPS2).all(axis=1)
        ok &= (np.abs(gyr) < MAX_ABS_GYR_RADS).all(axis=1)
        if mag is not None:
            ok &= (np.abs(mag) < MAX_ABS_MAG_UT).all(axis=1)
        rejected = len(ok) - int(ok.sum())
        if rejected:
            first_bad = self._rows_read + int(np.argmin(ok)) + 2
            _LOGGER.debug(
                "%s: %d rows rejected, first near line %d",
                self.source,
                rejected,
                first_bad,
            )
        self._rows_read += batch.num_rows

        t_us = np.rint(time_raw[ok] * f["time"]).astype(np.int64)
        samples = SampleChunk(
            t_us=t_us,
            acc_mps2=acc[ok].astype(np.float32),
            gyr_rads=gyr[ok].astype(np.float32),
            mag_ut=None if mag is None else mag[ok].astype(np.float32),
        )
        fixes = self._fixes(batch, time_raw) if self.columns.has_gnss else None
        return SourceChunk(
            samples,
            fixes if fixes is not None else GnssFixes.empty(),
            rejected_rows=rejected + ragged,
        )

    def _fixes(
        self, batch: pa.RecordBatch, time_raw: npt.NDArray[np.float64]
    ) -> GnssFixes:
        lat = self._numbers(batch, "lat")
        lon = self._numbers(batch, "lon")
        n = len(lat)
        alt = self._numbers(batch, "alt") if "alt" in self.columns.columns else None
        speed = None
        if "speed" in self.columns.columns:
            speed = self._numbers(batch, "speed") * self._factors["speed"]
        valid = np.isfinite(lat) & np.isfinite(lon)
        valid &= np.abs(time_raw * self._factors["time"]) < MAX_ABS_TIME_US
        valid &= (lat != 0.0) | (lon != 0.0)

        # Exports repeat the last fix on every row until the next one.
        index = np.flatnonzero(valid)
        if len(index):
            prev_lat = np.concatenate([[np.nan], lat[index[:-1]]])
            prev_lon = np.concatenate([[np.nan], lon[index[:-1]]])
            if self._last_fix is not None:
                prev_lat[0], prev_lon[0] = self._last_fix
            new = (lat[index] != prev_lat) | (lon[index] != prev_lon)
            self._last_fix = (float(lat[index[-1]]), float(lon[index[-1]]))
            index = index[new]
        nothing = np.full(n, np.nan)
        return GnssFixes(
            t_us=np.rint(time_raw[index] * self._factors["time"]).astype(np.int64),
            lat_deg=lat[index],
            lon_deg=lon[index],
            alt_m=(alt if alt is not None else nothing)[index],
            speed_mps=(speed if speed is not None else nothing)[index],
            course_deg=nothing[index],
        )
