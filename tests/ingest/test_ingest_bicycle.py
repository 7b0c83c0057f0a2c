"""The real recorded bicycle ride (Arduino export) through the CSV import.

``shared/data/real/bicycle-ride/ArduinoLog.csv`` (see its README): time
in ms since boot, about 2 Hz, acceleration in g, angular rate in deg/s, GPS
repeated between fixes. The phone's GPS logged 10.96 km for the same ride.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from edge_agent.ingest import UnitOptions, ingest_file
from edge_agent.processing import CrashDetector, ProcessOptions

_IN_SHARED = Path("data/real/bicycle-ride/ArduinoLog.csv")
# The shared folder sits beside the repository (a CI clone gets a copy there).
_CANDIDATES = [
    Path(__file__).resolve().parents[3] / "shared" / _IN_SHARED,
    Path("/work/shared") / _IN_SHARED,
]
RIDE = next((p for p in _CANDIDATES if p.exists()), _CANDIDATES[-1])

pytestmark = pytest.mark.skipif(not RIDE.exists(), reason=f"{RIDE} is not present")


def test_bicycle_ride_analytics(tmp_path: Path, detector: CrashDetector) -> None:
    units = UnitOptions(time_unit="ms", accel_unit="g", gyro_unit="deg/s")
    result = ingest_file(RIDE, "cyclist", "arduino-nano", tmp_path, detector,
                         units=units, options=ProcessOptions(fsync=False))  # fmt: skip
    got = result.analytics

    assert 10.3 <= got["distance_km"] <= 11.5
    assert got["duration_s"] == pytest.approx(2436, rel=0.01)
    assert 15.0 <= got["avg_speed_kmh"] <= 19.0
    assert isinstance(got["turns_left"], int) and isinstance(got["turns_right"], int)
    assert got["turns_left"] + got["turns_right"] > 0
    assert got["start_utc"] is None and got["end_utc"] is None
    assert got["sample_rate_hz"] == pytest.approx(2.0, rel=0.1)
    crash = got["crash"]
    assert crash["detected"] is None
    assert crash["events"] == []
    assert "Hz" in crash["reason"]
    # A bicycle's top speed, not a GPS glitch.
    assert 20.0 <= got["max_speed_kmh"] <= 45.0
