"""What to synthesise: the ride specification, activity labels, reference rides.

A ``RideSpec`` is a pure value: the same spec (seed included) always gives the
same log, byte for byte. ``validate`` rejects what the synthesiser cannot make
with ``SynthSpecError`` (a ``ValueError``), naming the field, the expected
range and the value found.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from enum import IntEnum
from typing import Literal

from .constants import DEFAULT_START_UTC

__all__ = [
    "ACCEL_FULL_SCALES_G",
    "ALL_CRASH_KINDS",
    "CRASH_KINDS",
    "EXTRA_CRASH_KINDS",
    "GYRO_FULL_SCALES_DPS",
    "REFERENCE_SEEDS",
    "SCENARIOS",
    "Activity",
    "RideSpec",
    "SynthSpecError",
    "reference_spec",
]

SCENARIOS = ("city", "highway", "track", "mixed")
CRASH_KINDS = ("lowside", "highside", "collision")
# Crash kinds a spec may ask for by name but that ``--crash random`` and
# other draws over ``CRASH_KINDS`` never pick (so existing seeds keep their
# crash): a fall with the bike at a standstill.
EXTRA_CRASH_KINDS = ("standstill",)
ALL_CRASH_KINDS = CRASH_KINDS + EXTRA_CRASH_KINDS
# The full scales the v1 decoder accepts (firmware_bridge.logformat.decoder).
ACCEL_FULL_SCALES_G = (2, 4, 8, 16, 32)
GYRO_FULL_SCALES_DPS = (125, 250, 500, 1000, 2000, 4000)
# Below 10 Hz a crash pulse or a gait cycle is no longer a signal at all; the
# format itself accepts 1-10 000 Hz.
SAMPLE_RATE_RANGE_HZ = (10.0, 4000.0)
# Suit GNSS modules deliver 1-10 Hz; a little either side for tests.
GNSS_RATE_RANGE_HZ = (0.5, 25.0)
# A crash needs some riding before it (speed, lean) to be a crash at all.
MIN_CRASH_AT_S = 5.0
U32_RANGE = 1 << 32

REFERENCE_SEEDS = {"50MB": 50_2025, "250MB": 250_2025}
# Riding time that, with 60 s of walking either side, lands the reference logs
# at about 50 MB and 250 MB (22 bytes per 1 kHz sample plus block framing and
# 5 Hz GNSS; measured, see docs/log-format.md).
_REFERENCE_RIDING_S = {"50MB": 2_090.0, "250MB": 11_150.0}


class SynthSpecError(ValueError):
    """A ride specification the synthesiser cannot produce."""


class Activity(IntEnum):
    """Per-sample activity label (uint8 codes in chunks and rides)."""

    STANDING = 0  # suit on, off the bike, not moving
    WALKING = 1
    MOUNTING = 2  # getting on or off the bike
    STOPPED = 3  # on the bike, not moving (lights, engine idling)
    RIDING = 4
    CRASH = 5  # from crash onset until the rider comes to rest
    LYING = 6  # motionless on the ground after a crash
    GETTING_UP = 7  # from lying to standing after a crash


@dataclass(frozen=True)
class RideSpec:
    """One synthetic ride: scenario, lengths, sensors, crash, identities.

    Times are seconds. ``crash_at_s`` counts from the start of riding (when
    the bike first moves); ``None`` picks a fitting moment by seed (a lowside
    early in a corner, a highside late in one, a collision on a straight); it
    is ignored when ``crash`` is None, so one spec family can toggle crashes.
    ``counter_start_us`` ``None`` draws the u32 counter's first value from the
    seed, so a long ride may wrap it; pass a value just below 2**32 to force a
    wrap. ``start_utc`` ``None`` means the suit clock was never set.
    ``lying_s`` ``None`` draws 20-60 s of lying still after a crash.
    """

    seed: int
    scenario: str
    riding_s: float
    sample_rate_hz: float = 1000.0
    crash: str | None = None
    crash_at_s: float | None = None
    walk_before_s: float = 30.0
    walk_after_s: float = 30.0
    with_mag: bool = True
    with_gnss: bool = True
    gnss_rate_hz: float = 5.0
    accel_full_scale_g: int = 16
    gyro_full_scale_dps: int = 2000
    suit_serial: str = "SUIT-0001"
    start_utc: datetime | None = field(default=DEFAULT_START_UTC)
    counter_start_us: int | None = None
    lying_s: float | None = None

    def validate(self) -> None:
        """Raise ``SynthSpecError`` naming the first field that is out of range."""
        if self.scenario not in SCENARIOS:
            _fail("scenario", f"one of {SCENARIOS}", self.scenario)
        _finite_at_least("riding_s", self.riding_s, 0.0)
        _finite_at_least("walk_before_s", self.walk_before_s, 0.0)
        _finite_at_least("walk_after_s", self.walk_after_s, 0.0)
        lo, hi = SAMPLE_RATE_RANGE_HZ
        if not (math.isfinite(self.sample_rate_hz) and lo <= self.sample_rate_hz <= hi):
            _fail("sample_rate_hz", f"{lo}-{hi} Hz", self.sample_rate_hz)
        if self.riding_s == 0 and self.walk_before_s + self.walk_after_s < 1.0:
            _fail("walk_before_s + walk_after_s", ">= 1 s without riding", 0.0)
        if self.crash is not None:
            if self.crash not in ALL_CRASH_KINDS:
                _fail("crash", f"None or one of {ALL_CRASH_KINDS}", self.crash)
            if self.riding_s < 2 * MIN_CRASH_AT_S:
                _fail(
                    "riding_s", f">= {2 * MIN_CRASH_AT_S} s with a crash", self.riding_s
                )
        at_s = None if self.crash is None else self.crash_at_s
        if at_s is not None and not MIN_CRASH_AT_S <= at_s <= self.riding_s:
            _fail("crash_at_s", f"{MIN_CRASH_AT_S}-{self.riding_s} s", at_s)
        if self.lying_s is not None:
            _finite_at_least("lying_s", self.lying_s, 1.0)
        glo, ghi = GNSS_RATE_RANGE_HZ
        if self.with_gnss and not glo <= self.gnss_rate_hz <= ghi:
            _fail("gnss_rate_hz", f"{glo}-{ghi} Hz", self.gnss_rate_hz)
        if self.accel_full_scale_g not in ACCEL_FULL_SCALES_G:
            _fail(
                "accel_full_scale_g",
                f"one of {ACCEL_FULL_SCALES_G}",
                self.accel_full_scale_g,
            )
        if self.gyro_full_scale_dps not in GYRO_FULL_SCALES_DPS:
            _fail(
                "gyro_full_scale_dps",
                f"one of {GYRO_FULL_SCALES_DPS}",
                self.gyro_full_scale_dps,
            )
        if not (self.suit_serial.isascii() and 0 < len(self.suit_serial) <= 16):
            _fail("suit_serial", "1-16 ASCII characters", self.suit_serial)
        if self.start_utc is not None and self.start_utc.utcoffset() is None:
            _fail("start_utc", "a timezone-aware datetime or None", self.start_utc)
        if self.counter_start_us is not None and not (
            0 <= self.counter_start_us < U32_RANGE
        ):
            _fail("counter_start_us", f"0-{U32_RANGE - 1}", self.counter_start_us)


def _fail(name: str, expected: str, found: object) -> None:
    raise SynthSpecError(
        f"ride spec field '{name}': expected {expected}, found {found!r}"
    )


def _finite_at_least(name: str, value: float, minimum: float) -> None:
    if not (math.isfinite(value) and value >= minimum):
        _fail(name, f"a finite number >= {minimum}", value)


def reference_spec(size: Literal["50MB", "250MB"]) -> RideSpec:
    """Return the spec of a DESIGN.md reference log (1 kHz, accel+gyro+mag).

    ``"50MB"`` is a private rider's ride of about 38 minutes, ``"250MB"`` a
    professional's of about 3 hours; both mixed city, country and highway
    riding with walking either side, 5 Hz GNSS and a fixed seed.
    """
    if size not in _REFERENCE_RIDING_S:
        raise SynthSpecError(
            f"reference size: expected one of {sorted(_REFERENCE_RIDING_S)}, "
            f"found {size!r}"
        )
    return RideSpec(
        seed=REFERENCE_SEEDS[size],
        scenario="mixed",
        riding_s=_REFERENCE_RIDING_S[size],
        sample_rate_hz=1000.0,
        walk_before_s=60.0,
        walk_after_s=60.0,
        with_mag=True,
        with_gnss=True,
        gnss_rate_hz=5.0,
        suit_serial="SUIT-REF-" + size,
    )
