"""Units of CSV columns: the options a caller gives and the factors to SI.

Units are never guessed. A column's unit comes from its header (``acc_x_mps2``,
``Ax [g]``, ``Time (ms)``) or from an option; a column with neither is an
error naming the file and the missing option. Latitude and longitude are
degrees and altitude metres by definition of those fields (GNSS receivers and
exports agree on these); every other quantity needs its unit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = [
    "ACCEL_UNITS",
    "GYRO_UNITS",
    "MAG_UNITS",
    "SPEED_UNITS",
    "TIME_REFERENCES",
    "TIME_UNITS",
    "UnitOptions",
    "normalise_unit",
]

# Factor from each accepted unit to the pipeline's unit (µs, m/s², rad/s,
# µT, m/s). Keys are the option spellings the CLI documents.
TIME_UNITS = {"s": 1e6, "ms": 1e3, "us": 1.0, "ns": 1e-3}
ACCEL_UNITS = {"g": 9.80665, "m/s2": 1.0}
GYRO_UNITS = {"deg/s": math.pi / 180.0, "rad/s": 1.0}
MAG_UNITS = {"uT": 1.0, "mT": 1e3, "gauss": 100.0}
SPEED_UNITS = {"m/s": 1.0, "km/h": 1 / 3.6, "knots": 1852 / 3600}
# "unix": numeric times count from 1970-01-01 UTC, so the clock is wall-clock.
TIME_REFERENCES = ("relative", "unix")

# Spellings seen in headers and options, mapped to the keys above.
_SPELLINGS = {
    "s": "s", "sec": "s", "secs": "s", "second": "s", "seconds": "s",
    "ms": "ms", "msec": "ms", "millis": "ms", "milliseconds": "ms",
    "us": "us", "µs": "us", "usec": "us", "microseconds": "us",
    "ns": "ns", "nsec": "ns", "nanoseconds": "ns",
    "g": "g",
    "m/s2": "m/s2", "m/s^2": "m/s2", "m/s²": "m/s2", "mps2": "m/s2",
    "ms2": "m/s2", "ms-2": "m/s2", "m_s2": "m/s2",
    "deg/s": "deg/s", "dps": "deg/s", "°/s": "deg/s", "degs": "deg/s",
    "deg_s": "deg/s",
    "rad/s": "rad/s", "rads": "rad/s", "rps": "rad/s", "rad_s": "rad/s",
    "ut": "uT", "µt": "uT", "microtesla": "uT", "mt": "mT", "gauss": "gauss",
    "m/s": "m/s", "mps": "m/s", "kmh": "km/h", "km/h": "km/h", "kph": "km/h",
    "knots": "knots", "kn": "knots", "kt": "knots",
    "deg": "deg", "degrees": "deg", "°": "deg", "m": "m",
}  # fmt: skip


def normalise_unit(text: str) -> str | None:
    """Return the canonical spelling of a unit, or None if it is not one."""
    return _SPELLINGS.get(text.strip().lower().replace(" ", ""))


@dataclass(frozen=True)
class UnitOptions:
    """Units for CSV columns whose header does not declare them.

    ``time_reference`` says what numeric times count from: ``relative`` (a
    board's uptime: the analytics get no wall-clock start) or ``unix``.
    """

    time_unit: str | None = None
    accel_unit: str | None = None
    gyro_unit: str | None = None
    mag_unit: str | None = None
    speed_unit: str | None = None
    time_reference: str = "relative"

    def __post_init__(self) -> None:
        for option, value, table in (
            ("time_unit", self.time_unit, TIME_UNITS),
            ("accel_unit", self.accel_unit, ACCEL_UNITS),
            ("gyro_unit", self.gyro_unit, GYRO_UNITS),
            ("mag_unit", self.mag_unit, MAG_UNITS),
            ("speed_unit", self.speed_unit, SPEED_UNITS),
        ):
            if value is not None and normalise_unit(value) not in table:
                raise ValueError(
                    f"{option}: expected one of {sorted(table)}, found {value!r}"
                )
        if self.time_reference not in TIME_REFERENCES:
            raise ValueError(
                f"time_reference: expected one of {list(TIME_REFERENCES)}, "
                f"found {self.time_reference!r}"
            )
