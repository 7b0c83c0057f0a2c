"""Physical constants and fixed choices shared by the synthesiser modules."""

from __future__ import annotations

from datetime import UTC, datetime

__all__ = [
    "CHUNK_S",
    "DEFAULT_START_UTC",
    "FIRMWARE_VERSION",
    "G_M_S2",
    "MAG_FULL_SCALE_UT",
]

# Standard gravity; every "g" in logs and truth files is this many m/s^2.
G_M_S2 = 9.80665
# Seconds generated per chunk: 30 s at 1 kHz is 30 000 samples, a few MB of
# float64 work arrays, so memory stays flat for a 3 h ride. Fixed, because the
# noise drawn per chunk (and so the bytes of the log) depends on it.
CHUNK_S = 30.0
# Magnetometer range of the suit's sensor (+-1300 uT, a BMM150-class part):
# 0.04 uT per count, far finer than the noise.
MAG_FULL_SCALE_UT = 1300
FIRMWARE_VERSION = "SYNTH-1.0"
# A fixed default so that a spec without a start time is still reproducible.
DEFAULT_START_UTC = datetime(2025, 6, 14, 7, 30, tzinfo=UTC)
