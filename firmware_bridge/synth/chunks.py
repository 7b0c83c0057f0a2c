"""Generate a ride chunk by chunk: true motion, sensor readings, raw counts.

``iter_ride_chunks`` plans the ride, then for each ``CHUNK_S`` of samples
evaluates the motion, adds what the sensors add, converts to int16 counts
with ``physical_to_raw`` (clipping at full scale is the sensor's saturation)
and back, and attaches the GNSS fixes and event records that fall in the
chunk. Memory is bounded by the chunk, whatever the ride's length.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from firmware_bridge.logformat import (
    EVENT_DTYPE,
    GNSS_DTYPE,
    LogHeader,
    physical_to_raw,
    raw_to_physical,
)

from .constants import CHUNK_S, G_M_S2, MAG_FULL_SCALE_UT
from .gnss import GnssModel, TrackIntegrator
from .ride import RidePlan, plan_ride
from .sensors import SensorModel
from .spec import RideSpec

__all__ = ["SampleTruth", "SynthChunk", "iter_plan_chunks", "iter_ride_chunks"]

_LOGGER = logging.getLogger(__name__)

F64 = npt.NDArray[np.float64]
F32 = npt.NDArray[np.float32]
I16 = npt.NDArray[np.int16]

_U32_MASK = 0xFFFFFFFF


@dataclass(frozen=True)
class SampleTruth:
    """True values per sample (what an estimator should recover)."""

    speed_m_s: F32  # ground speed of the suit
    course_deg: F32  # direction of travel, clockwise from north
    lean_deg: F32  # suit roll relative to gravity, positive right
    long_accel_g: F32  # vehicle longitudinal acceleration, 0 off the bike
    yaw_rate_dps: F32  # heading rate of the path, positive left
    on_bike: npt.NDArray[np.bool_]  # on the bike (stopped or riding), pre-crash
    east_m: F64  # position in the local ENU frame
    north_m: F64
    distance_m: F64  # travelled since the first sample


@dataclass(frozen=True)
class SynthChunk:
    """One chunk of a synthetic ride, as logged plus its truth.

    ``accel_g``/``gyro_dps``/``mag_ut`` are exactly what a decoder reads back
    from the log (quantised, clipped at full scale); ``*_raw`` are the int16
    counts written. ``events``/``gnss`` are records whose times fall in the
    chunk; ``event_index``/``gnss_index`` are their global sample indices.
    """

    index: int
    first_sample: int
    t_s: F64
    t_us: npt.NDArray[np.uint32]
    accel_g: F32
    gyro_dps: F32
    mag_ut: F32 | None
    acc_raw: I16
    gyr_raw: I16
    mag_raw: I16 | None
    activity: npt.NDArray[np.uint8]
    truth: SampleTruth
    events: npt.NDArray[np.void]
    event_index: npt.NDArray[np.int64]
    gnss: npt.NDArray[np.void]
    gnss_index: npt.NDArray[np.int64]

    def __len__(self) -> int:
        return len(self.t_s)


def counter_us(
    header: LogHeader, rate_hz: float, index: npt.NDArray[np.int64]
) -> npt.NDArray[np.uint32]:
    """Return the suit's wrapping u32 microsecond counter at sample ``index``."""
    offset = np.rint(index * (1e6 / rate_hz)).astype(np.int64)
    counter: npt.NDArray[np.uint32] = (
        (header.counter_start_us + offset) & _U32_MASK
    ).astype(np.uint32)
    return counter


def _events(
    plan: RidePlan, lo: int, hi: int
) -> tuple[npt.NDArray[np.void], npt.NDArray[np.int64]]:
    rate = plan.spec.sample_rate_hz
    rows = [
        (t_s, kind, value, int(np.ceil(t_s * rate - 1e-6)))
        for t_s, kind, value in plan.events
    ]
    rows = [r for r in rows if lo <= r[3] < hi]
    out = np.zeros(len(rows), dtype=EVENT_DTYPE)
    for i, (t_s, kind, value, _) in enumerate(rows):
        out[i]["t_us"] = (plan.header.counter_start_us + round(t_s * 1e6)) & _U32_MASK
        out[i]["kind"] = int(kind)
        out[i]["value"] = value
    return out, np.array([r[3] for r in rows], dtype=np.int64)


def iter_plan_chunks(plan: RidePlan) -> Iterator[SynthChunk]:
    """Yield the chunks of an already planned ride (see ``iter_ride_chunks``)."""
    spec = plan.spec
    rate = spec.sample_rate_hz
    chunk_n = max(1, round(CHUNK_S * rate))
    sensors = SensorModel(spec, plan.sensor_seed, plan.bumps, plan.bike)
    gnss = GnssModel(spec, plan.gnss_seed) if spec.with_gnss else None
    track = TrackIntegrator(rate)
    empty_gnss = np.zeros(0, dtype=GNSS_DTYPE)

    for number, lo in enumerate(range(0, plan.n_samples, chunk_n)):
        hi = min(plan.n_samples, lo + chunk_n)
        index = np.arange(lo, hi, dtype=np.int64)
        t_s = index / rate
        motion = plan.evaluate(index)
        readings = sensors.measure(t_s, motion)
        acc_raw = physical_to_raw(readings.accel_g, spec.accel_full_scale_g)
        gyr_raw = physical_to_raw(readings.gyro_dps, spec.gyro_full_scale_dps)
        mag_raw = mag_ut = None
        if readings.mag_ut is not None:
            mag_raw = physical_to_raw(readings.mag_ut, MAG_FULL_SCALE_UT)
            mag_ut = raw_to_physical(mag_raw, MAG_FULL_SCALE_UT)
        t_us = counter_us(plan.header, rate, index)
        east, north, dist = track.advance(motion.speed_m_s, motion.travel_heading_rad)
        if gnss is not None:
            fixes, fix_index = gnss.records(
                lo, t_us, motion.speed_m_s, motion.travel_heading_rad, east, north, dist
            )
        else:
            fixes, fix_index = empty_gnss, np.zeros(0, dtype=np.int64)
        events, event_index = _events(plan, lo, hi)
        course = (90.0 - np.degrees(motion.travel_heading_rad)) % 360.0
        truth = SampleTruth(
            speed_m_s=motion.speed_m_s.astype(np.float32),
            course_deg=course.astype(np.float32),
            lean_deg=np.degrees(motion.roll_rad).astype(np.float32),
            long_accel_g=(motion.long_accel_m_s2 / G_M_S2).astype(np.float32),
            yaw_rate_dps=np.degrees(motion.yaw_rate_rad_s).astype(np.float32),
            on_bike=motion.on_bike,
            east_m=east,
            north_m=north,
            distance_m=dist,
        )
        _LOGGER.debug("%s: chunk %d, samples %d-%d", spec.suit_serial, number, lo, hi)
        yield SynthChunk(
            index=number,
            first_sample=lo,
            t_s=t_s,
            t_us=t_us,
            accel_g=raw_to_physical(acc_raw, spec.accel_full_scale_g),
            gyro_dps=raw_to_physical(gyr_raw, spec.gyro_full_scale_dps),
            mag_ut=mag_ut,
            acc_raw=acc_raw,
            gyr_raw=gyr_raw,
            mag_raw=mag_raw,
            activity=motion.activity,
            truth=truth,
            events=events,
            event_index=event_index,
            gnss=fixes,
            gnss_index=fix_index,
        )


def iter_ride_chunks(spec: RideSpec) -> Iterator[SynthChunk]:
    """Yield a ride's samples in chunks of ``CHUNK_S`` seconds.

    Raises:
        SynthSpecError: a field of ``spec`` is out of range (raised at once).
    """
    return iter_plan_chunks(plan_ride(spec))
