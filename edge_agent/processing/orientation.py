"""Estimate orientation on the 100 Hz grid with imufusion (lean, yaw rate).

The AHRS fuses the gyroscope with the accelerometer's idea of "up". On a
motorcycle that idea is wrong in every steady turn: the specific force is
gravity plus the centripetal acceleration, and in a coordinated turn their
sum points along the body's z axis however far the rider leans. Two remedies:

- with GNSS speed ``v`` the motion part is removed before the AHRS sees it:
  ``a = dv/dt x + w cross (v x) = (dv/dt, r v, -q v)`` in the body frame (x forward,
  y left, z up; ``q``, ``r`` the pitch and yaw rates);
- without speed, Fusion's acceleration rejection ignores the accelerometer
  while it disagrees with the gyro-propagated gravity by more than
  ``ACCEL_REJECTION_DEG``, for at most ``REJECTION_TIMEOUT_S``.

Outputs per grid point: lean (roll relative to gravity, positive = leaning
right), the world-frame yaw rate (positive = turning left) and the
longitudinal acceleration with gravity removed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import imufusion
import numpy as np
import numpy.typing as npt

from models.contract import MODEL_RATE_HZ

from .samples import STANDARD_GRAVITY_MPS2

__all__ = [
    "ACCEL_REJECTION_DEG",
    "AHRS_GAIN",
    "REJECTION_TIMEOUT_S",
    "OrientationBlock",
    "OrientationEstimator",
]

_LOGGER = logging.getLogger(__name__)

# Fusion's default; lower trusts the gyro longer, higher follows the
# accelerometer's vibration.
AHRS_GAIN = 0.5
# A 0.2 g unexplained acceleration tilts the specific force by about 11°;
# rejecting beyond 10° keeps braking and turns without speed out of the tilt.
ACCEL_REJECTION_DEG = 10.0
# A long sweeping bend lasts tens of seconds; after this long the filter
# trusts the accelerometer again so a gyro drift cannot run away.
REJECTION_TIMEOUT_S = 20.0

_RAD_TO_DEG = 180.0 / np.pi

F64 = npt.NDArray[np.float64]


@dataclass
class OrientationBlock:
    """Per-grid-point outputs for one block of consecutive grid points."""

    start: int
    lean_deg: F64
    yaw_rate_rads: F64
    long_accel_mps2: F64


class OrientationEstimator:
    """Run imufusion over grid blocks, keeping the filter state between them."""

    def __init__(self, gyro_range_dps: float | None) -> None:
        self._ahrs = imufusion.Ahrs()
        self._ahrs.set_settings(
            imufusion.AhrsSettings(
                sample_rate=MODEL_RATE_HZ,
                convention=imufusion.CONVENTION_NWU,
                gain=AHRS_GAIN,
                gyroscope_range=float(gyro_range_dps or 0.0),
                acceleration_rejection=ACCEL_REJECTION_DEG,
                magnetic_rejection=0.0,
                rejection_timeout=REJECTION_TIMEOUT_S,
            )
        )

    def update(
        self,
        start: int,
        acc_mps2: F64,
        gyr_rads: F64,
        speed_mps: F64,
        speed_rate_mps2: F64,
    ) -> OrientationBlock:
        """Fuse ``n`` grid points; speed is NaN where GNSS cannot say."""
        n = len(acc_mps2)

        # Remove the motion part of the specific force where speed is known.
        motion = np.zeros((n, 3))
        known = ~np.isnan(speed_mps)
        v = speed_mps[known]
        motion[known, 0] = speed_rate_mps2[known]
        motion[known, 1] = gyr_rads[known, 2] * v
        motion[known, 2] = -gyr_rads[known, 1] * v
        acc_g = (acc_mps2 - motion) / STANDARD_GRAVITY_MPS2
        gyr_dps = gyr_rads * _RAD_TO_DEG

        # Fusion has no batch call; one C call per grid point (~1 µs each).
        update = self._ahrs.update_no_magnetometer
        quaternion = self._ahrs.get_quaternion
        collected = []
        for gyro, accel in zip(gyr_dps, acc_g, strict=True):
            update(gyro, accel)
            collected.append(quaternion())
        quaternions = np.array(collected).reshape(n, 4)

        # Up (world z) in the body frame is the third row of the body->world
        # rotation; roll is its angle in the body's y-z plane.
        w, x, y, z = quaternions.T
        up = np.empty((n, 3))
        up[:, 0] = 2.0 * (x * z - w * y)
        up[:, 1] = 2.0 * (y * z + w * x)
        up[:, 2] = 1.0 - 2.0 * (x * x + y * y)
        lean_deg = np.arctan2(up[:, 1], up[:, 2]) * _RAD_TO_DEG
        yaw_rate = np.einsum("ij,ij->i", up, gyr_rads)
        long_accel = acc_mps2[:, 0] - STANDARD_GRAVITY_MPS2 * up[:, 0]
        return OrientationBlock(start, lean_deg, yaw_rate, long_accel)
