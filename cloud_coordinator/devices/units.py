"""Units a device may state for a reading, and what they are converted to.

Every reading names its unit; the unit decides the physical quantity, the
stored unit (SI or the project's usual one) and the sane range. A unit not
listed here is refused rather than guessed. The CSV column of a reading is
``{name}_{suffix}`` (``acc_x`` in g becomes ``acc_x_mps2`` in m/s²).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["UNITS", "Quantity", "UnitRule", "unit_rule"]

STANDARD_GRAVITY_MPS2 = 9.80665


@dataclass(frozen=True)
class Quantity:
    """A physical quantity: stored unit suffix and the plausible range."""

    name: str
    suffix: str
    low: float
    high: float


@dataclass(frozen=True)
class UnitRule:
    """How a stated unit converts to its quantity's stored unit."""

    quantity: Quantity
    scale: float
    offset: float = 0.0

    def convert(self, value: float) -> float:
        """Return ``value`` in the stored unit."""
        return value * self.scale + self.offset


# Ranges are what a sensor on a rider or motorcycle can physically report,
# with margin: an airbag-grade accelerometer saturates near 200 g, a MEMS
# gyroscope near 4000 deg/s; anything outside is a broken sensor or a unit
# mix-up.
ACCELERATION = Quantity("acceleration", "mps2", -2000.0, 2000.0)
ANGULAR_RATE = Quantity("angular rate", "rads", -70.0, 70.0)
MAGNETIC_FIELD = Quantity("magnetic field", "ut", -5000.0, 5000.0)
TEMPERATURE = Quantity("temperature", "degc", -80.0, 200.0)
PRESSURE = Quantity("pressure", "pa", 0.0, 200_000.0)
VOLTAGE = Quantity("voltage", "v", -100.0, 100.0)
RATIO = Quantity("ratio", "pct", 0.0, 100.0)
ANGLE = Quantity("angle", "deg", -360.0, 360.0)
LENGTH = Quantity("length", "m", -1000.0, 100_000.0)
SPEED = Quantity("speed", "mps", -300.0, 300.0)
HEART_RATE = Quantity("heart rate", "bpm", 0.0, 300.0)

UNITS: dict[str, UnitRule] = {
    "g": UnitRule(ACCELERATION, STANDARD_GRAVITY_MPS2),
    "m/s2": UnitRule(ACCELERATION, 1.0),
    "m/s^2": UnitRule(ACCELERATION, 1.0),
    "deg/s": UnitRule(ANGULAR_RATE, math.pi / 180.0),
    "dps": UnitRule(ANGULAR_RATE, math.pi / 180.0),
    "rad/s": UnitRule(ANGULAR_RATE, 1.0),
    "uT": UnitRule(MAGNETIC_FIELD, 1.0),
    "µT": UnitRule(MAGNETIC_FIELD, 1.0),
    "nT": UnitRule(MAGNETIC_FIELD, 1e-3),
    "G": UnitRule(MAGNETIC_FIELD, 100.0),
    "degC": UnitRule(TEMPERATURE, 1.0),
    "K": UnitRule(TEMPERATURE, 1.0, -273.15),
    "Pa": UnitRule(PRESSURE, 1.0),
    "hPa": UnitRule(PRESSURE, 100.0),
    "kPa": UnitRule(PRESSURE, 1000.0),
    "V": UnitRule(VOLTAGE, 1.0),
    "mV": UnitRule(VOLTAGE, 1e-3),
    "%": UnitRule(RATIO, 1.0),
    "deg": UnitRule(ANGLE, 1.0),
    "rad": UnitRule(ANGLE, 180.0 / math.pi),
    "m": UnitRule(LENGTH, 1.0),
    "m/s": UnitRule(SPEED, 1.0),
    "km/h": UnitRule(SPEED, 1.0 / 3.6),
    "bpm": UnitRule(HEART_RATE, 1.0),
}


def unit_rule(unit: str) -> UnitRule | None:
    """Return the rule of a stated unit, or None if it is not accepted."""
    return UNITS.get(unit)
