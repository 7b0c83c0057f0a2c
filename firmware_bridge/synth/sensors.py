"""What the suit's sensors add to the true motion: vibration, bias, noise.

- Engine: a twin shakes mainly at engine order 1 (rpm/60: 20 Hz at idle to
  ~150 Hz), a four at order 2; amplitude grows with rpm. The phase is
  integrated across chunks, so a sample rate below twice the frequency simply
  aliases, as on the real sensor.
- Road: a few resonances between 6 and 35 Hz plus broadband noise, scaled by
  road roughness and speed; bumps are a front- and a rear-wheel pulse with a
  pitch-rate blip.
- Accelerometer and gyroscope: per-axis bias and scale error, white noise
  from a noise density (so it grows with the rate), a slow gyro bias drift.
- Magnetometer: the Earth's field (about 47 uT, 60 degrees inclination, as in
  northern Italy) rotated into the body frame, a hard-iron offset of the suit,
  an extra offset near the bike, noise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from .frames import to_body
from .parts import PartSamples
from .planner import BikeParams
from .ride import Bumps
from .spec import RideSpec

__all__ = ["SensorModel", "SensorReadings"]

F64 = npt.NDArray[np.float64]

# Noise densities of a consumer MEMS IMU: accelerometer 150 ug/sqrt(Hz),
# gyroscope 0.008 dps/sqrt(Hz); the bandwidth is taken as half the rate.
_ACCEL_NOISE_G_RTHZ = 150e-6
_GYRO_NOISE_DPS_RTHZ = 0.008
_MAG_NOISE_UT = 0.35
# Per-log constant errors (1 sigma).
_ACCEL_BIAS_G = 0.012
_GYRO_BIAS_DPS = 0.35
_SCALE_ERROR = 0.003
_GYRO_DRIFT_DPS = 0.1
_HARD_IRON_UT = 4.0
_BIKE_IRON_UT = 6.0
# Earth's field near 44.5 N 11.3 E: horizontal 23 uT, inclination 60.5 deg,
# declination 3 deg east.
_EARTH_HORIZONTAL_UT = 23.0
_EARTH_INCLINATION_DEG = 60.5
_EARTH_DECLINATION_DEG = 3.0
# Engine shake at the rider's back (g): idle floor plus a rpm^2 part.
_ENGINE_FLOOR_G = 0.015
_ENGINE_SPAN_G = 0.06
# Road resonances: number and frequency range (Hz).
_ROAD_MODES = 6
_ROAD_HZ = (6.0, 35.0)
# Gyro pitch-rate blip per g of bump (dps/g) and road rotation per g (dps/g).
_BUMP_PITCH_DPS_PER_G = 12.0
_ROAD_GYRO_DPS_PER_G = 16.0


@dataclass(frozen=True)
class SensorReadings:
    """Physical sensor output before int16 quantisation (float64)."""

    accel_g: F64
    gyro_dps: F64
    mag_ut: F64 | None


def _unit(v: F64) -> F64:
    return v / np.linalg.norm(v)


class SensorModel:
    """Turn true motion into sensor readings, chunk after chunk."""

    def __init__(
        self,
        spec: RideSpec,
        seed: np.random.SeedSequence,
        bumps: Bumps,
        bike: BikeParams,
    ) -> None:
        rng = np.random.default_rng(seed)
        self.spec = spec
        self.bumps = bumps
        self.bike = bike
        rate = spec.sample_rate_hz
        self.dt = 1.0 / rate
        bandwidth = math.sqrt(rate / 2.0)
        self.accel_noise_g = _ACCEL_NOISE_G_RTHZ * bandwidth
        self.gyro_noise_dps = _GYRO_NOISE_DPS_RTHZ * bandwidth

        self.accel_bias = rng.normal(0.0, _ACCEL_BIAS_G, 3)
        self.accel_scale = 1.0 + rng.normal(0.0, _SCALE_ERROR, 3)
        self.gyro_bias = rng.normal(0.0, _GYRO_BIAS_DPS, 3)
        self.gyro_scale = 1.0 + rng.normal(0.0, _SCALE_ERROR, 3)
        self.gyro_drift = rng.normal(0.0, _GYRO_DRIFT_DPS, 3)
        self.gyro_drift_hz = 1.0 / rng.uniform(1200.0, 3600.0, 3)
        self.gyro_drift_phase = rng.uniform(0.0, 2 * np.pi, 3)

        self.engine_amp = rng.uniform(0.7, 1.3)
        self.engine_dirs = (
            _unit(np.array([0.45, 0.1, 0.88]) + rng.normal(0.0, 0.1, 3)),
            _unit(np.array([0.2, 0.3, 0.93]) + rng.normal(0.0, 0.1, 3)),
        )
        self.engine_gyro_dir = _unit(
            np.array([0.7, 0.6, 0.4]) + rng.normal(0.0, 0.1, 3)
        )
        self.road_hz = rng.uniform(*_ROAD_HZ, _ROAD_MODES)
        self.road_phase = rng.uniform(0.0, 2 * np.pi, _ROAD_MODES)
        self.road_dirs = np.abs(rng.normal(0.0, 1.0, (_ROAD_MODES, 3))) * [
            0.35,
            0.2,
            1.0,
        ]
        self.road_dirs /= np.linalg.norm(self.road_dirs, axis=1, keepdims=True)

        incl = math.radians(_EARTH_INCLINATION_DEG + rng.normal(0.0, 0.5))
        decl = math.radians(_EARTH_DECLINATION_DEG + rng.normal(0.0, 0.5))
        h = _EARTH_HORIZONTAL_UT * (1.0 + rng.normal(0.0, 0.02))
        self.earth_ut = np.array(
            [h * math.sin(decl), h * math.cos(decl), -h * math.tan(incl)]
        )
        self.hard_iron_ut = rng.normal(0.0, _HARD_IRON_UT, 3)
        self.bike_iron_ut = rng.normal(0.0, _BIKE_IRON_UT, 3)

        self._noise = rng
        self._engine_phase = 0.0

    def _engine(self, rpm: F64) -> tuple[F64, F64]:
        """Return engine vibration: accel (g) and gyro (dps), (n, 3) each."""
        step = 2 * np.pi * rpm / 60.0 * self.dt
        phase = self._engine_phase + np.cumsum(step)
        if len(phase):
            self._engine_phase = float(phase[-1] % (2 * np.pi))
        load = rpm / self.bike.redline_rpm
        amp = np.where(
            rpm > 0, self.engine_amp * (_ENGINE_FLOOR_G + _ENGINE_SPAN_G * load**2), 0
        )
        first, second = (1.0, 0.5) if self.bike.twin else (0.15, 1.0)
        accel = (amp * first * np.sin(phase))[:, None] * self.engine_dirs[0] + (
            amp * second * np.sin(2 * phase + 0.4)
        )[:, None] * self.engine_dirs[1]
        gyro = np.where(rpm > 0, 0.3 + 1.2 * load, 0.0) * np.sin(phase + 1.1)
        return accel, gyro[:, None] * self.engine_gyro_dir

    def _road(self, t_s: F64, roughness_g: F64) -> tuple[F64, F64]:
        """Return road vibration: accel (g) and gyro (dps), (n, 3) each."""
        waves = np.sin(
            2 * np.pi * self.road_hz[None, :] * t_s[:, None] + self.road_phase
        )
        accel = (waves @ self.road_dirs) / math.sqrt(_ROAD_MODES)
        accel += 0.5 * self._noise.normal(0.0, 1.0, accel.shape)
        accel *= roughness_g[:, None]
        gyro = np.zeros_like(accel)
        gyro[:, :2] = waves[:, :2] + 0.5 * self._noise.normal(0.0, 1.0, (len(t_s), 2))
        gyro *= (_ROAD_GYRO_DPS_PER_G * roughness_g)[:, None]
        return accel, gyro

    def _bumps(self, t_s: F64, accel: F64, gyro: F64) -> None:
        """Add road bumps in ``[t_s[0], t_s[-1]]`` to accel and gyro in place."""
        b = self.bumps
        lo = np.searchsorted(b.t_s, t_s[0] - 1.0)
        hi = np.searchsorted(b.t_s, t_s[-1] + 0.1)
        min_width = 3.0 * self.dt
        for k in range(lo, hi):
            width = max(float(b.width_s[k]), min_width)
            peak = float(b.peak_g[k]) * float(b.width_s[k]) / width
            for start, share, pitch in (
                (b.t_s[k], 1.0, -1.0),
                (b.t_s[k] + b.delay_s[k], 0.8, 1.0),
            ):
                u = (t_s - start) / width
                inside = (u > 0) & (u < 1)
                if not inside.any():
                    continue
                shape = np.sin(np.pi * u[inside]) * peak * share
                accel[inside, 2] += shape
                accel[inside, 0] -= 0.3 * shape
                gyro[inside, 1] += pitch * _BUMP_PITCH_DPS_PER_G * shape

    def measure(self, t_s: F64, s: PartSamples) -> SensorReadings:
        """Return what the sensors read for the true motion ``s`` at ``t_s``."""
        n = len(t_s)
        engine_acc, engine_gyr = self._engine(s.engine_rpm)
        road_acc, road_gyr = self._road(t_s, s.road_roughness_g)
        vib_acc = engine_acc + road_acc
        vib_gyr = engine_gyr + road_gyr
        self._bumps(t_s, vib_acc, vib_gyr)

        accel = self.accel_scale * (s.f_body_g + vib_acc) + self.accel_bias
        accel += self._noise.normal(0.0, self.accel_noise_g, (n, 3))
        drift = self.gyro_drift * np.sin(
            2 * np.pi * self.gyro_drift_hz * t_s[:, None] + self.gyro_drift_phase
        )
        gyro = (
            self.gyro_scale * (np.degrees(s.omega_rad_s) + vib_gyr)
            + self.gyro_bias
            + drift
        )
        gyro += self._noise.normal(0.0, self.gyro_noise_dps, (n, 3))
        mag = None
        if self.spec.with_mag:
            earth = to_body(s.body_to_world, np.broadcast_to(self.earth_ut, (n, 3)))
            mag = earth + self.hard_iron_ut + s.on_bike[:, None] * self.bike_iron_ut
            mag += self._noise.normal(0.0, _MAG_NOISE_UT, (n, 3))
        return SensorReadings(accel, gyro, mag)
