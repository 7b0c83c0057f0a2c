"""Synthesise realistic suit ride logs with their true analytics.

A ride is planned from a ``RideSpec`` (scenario, lengths, sensors, optional
crash), then generated chunk by chunk: true motion in the suit's body frame
(x forward, y left, z up), what the sensors add (vibration, bias, noise,
saturation), GNSS fixes and event records. The same spec (seed included)
gives the same log, byte for byte.

Entry points::

    synthesise(spec) -> SynthRide              # short rides, all in memory
    iter_ride_chunks(spec) -> Iterator[SynthChunk]
    write_ride(spec, path) -> RideTruth        # log + <path>.truth.json
    reference_spec("50MB" | "250MB") -> RideSpec

Errors::

    ValueError
    └── SynthSpecError   a spec field is out of range (named in the message)

Writing a log raises ``OSError`` when the file system refuses.

Known limits: the rider's torso follows the bike rigidly (no hanging off in
corners, no counter-steering roll oscillation); the IMU is taken at the
vehicle's reference point (no lever-arm accelerations); one crash per ride;
the Earth is flat within a ride for position (spherical for lat/lon).
"""

from .api import SynthRide, ride_log_path, synthesise, write_ride
from .chunks import SampleTruth, SynthChunk, iter_ride_chunks
from .constants import CHUNK_S, G_M_S2
from .spec import (
    ALL_CRASH_KINDS,
    CRASH_KINDS,
    EXTRA_CRASH_KINDS,
    SCENARIOS,
    Activity,
    RideSpec,
    SynthSpecError,
    reference_spec,
)
from .truth import DEFINITIONS, CrashEventTruth, RideTruth, truth_path

__all__ = [
    "ALL_CRASH_KINDS",
    "CHUNK_S",
    "CRASH_KINDS",
    "DEFINITIONS",
    "EXTRA_CRASH_KINDS",
    "G_M_S2",
    "SCENARIOS",
    "Activity",
    "CrashEventTruth",
    "RideSpec",
    "RideTruth",
    "SampleTruth",
    "SynthChunk",
    "SynthRide",
    "SynthSpecError",
    "iter_ride_chunks",
    "reference_spec",
    "ride_log_path",
    "synthesise",
    "truth_path",
    "write_ride",
]
