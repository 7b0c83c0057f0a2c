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
    "BIAS_BLOCK_POINTS",
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
# Gyroscope bias loop (see ``OrientationEstimator``): one update per 5 s
# of grid; the integral gain makes the loop's slow time constant about
# gain / BIAS_GAIN_PER_S2 = 50 s, far slower than any riding manoeuvre.
BIAS_BLOCK_POINTS = 500
BIAS_GAIN_PER_S2 = 0.01
# The accelerometer is trusted for the bias loop when its magnitude is within
# this of 1 g and it points within ACCEL_REJECTION_DEG of the filter's "up".
BIAS_TRUST_G = 0.1
# Consumer gyroscopes stay within a few degrees per second of bias.
MAX_BIAS_RADS = np.radians(5.0)

_RAD_TO_DEG = 180.0 / np.pi
_TRUST_COS = float(np.cos(np.radians(ACCEL_REJECTION_DEG)))

F64 = npt.NDArray[np.float64]


@dataclass
class OrientationBlock:
    """Per-grid-point outputs for one block of consecutive grid points."""

    start: int
    lean_deg: F64
    yaw_rate_rads: F64
    long_accel_mps2: F64


class OrientationEstimator:
    """Run imufusion over grid blocks, keeping the filter state between them.

    Fusion's filter is proportional only: a gyroscope bias ``b`` leaves a
    steady tilt error of about ``b / gain`` (0.6°/s gives 1.2° of lean).
    Around it sits a slow integral loop, as in Mahony's filter: over each
    ``BIAS_BLOCK_POINTS`` block of the global grid the mean disagreement
    between the filter's "up" and the (motion-compensated) accelerometer,
    where the accelerometer is trustworthy, moves the bias estimate that is
    subtracted from the gyroscope. Blocks follow the global grid index, so
    the result does not depend on how the stream is chunked.
    """

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
        self.gyro_bias_rads = np.zeros(3)
        self._feedback_sum = np.zeros(3)
        self._feedback_count = 0

    def update(
        self,
        start: int,
        acc_mps2: F64,
        gyr_rads: F64,
        speed_mps: F64,
        speed_rate_mps2: F64,
    ) -> OrientationBlock:
        """Fuse ``n`` grid points from grid index ``start``; speed is NaN where
        GNSS cannot say."""
        n = len(acc_mps2)
        out = OrientationBlock(start, np.empty(n), np.empty(n), np.empty(n))
        pos = 0
        while pos < n:
            # Pieces end on the global bias-block boundaries.
            stop = min(n, pos + BIAS_BLOCK_POINTS - (start + pos) % BIAS_BLOCK_POINTS)
            piece = slice(pos, stop)
            self._fuse(
                acc_mps2[piece], gyr_rads[piece], speed_mps[piece],
                speed_rate_mps2[piece], out, piece,
            )  # fmt: skip
            if (start + stop) % BIAS_BLOCK_POINTS == 0:
                self._update_bias()
            pos = stop
        return out

    def _fuse(
        self,
        acc_mps2: F64,
        gyr_rads: F64,
        speed_mps: F64,
        speed_rate_mps2: F64,
        out: OrientationBlock,
        piece: slice,
    ) -> None:
        n = len(acc_mps2)
        gyr = gyr_rads - self.gyro_bias_rads

        # Remove the motion part of the specific force where speed is known.
        motion = np.zeros((n, 3))
        known = ~np.isnan(speed_mps)
        v = speed_mps[known]
        motion[known, 0] = speed_rate_mps2[known]
        motion[known, 1] = gyr[known, 2] * v
        motion[known, 2] = -gyr[known, 1] * v
        acc_g = (acc_mps2 - motion) / STANDARD_GRAVITY_MPS2
        gyr_dps = gyr * _RAD_TO_DEG

        # Fusion has no batch call; one C call per grid point (~1 µs each),
        # driven by map() to keep the Python work per point minimal.
        update = self._ahrs.update_no_magnetometer
        quaternion = self._ahrs.get_quaternion

        def step(gyro: F64, accel: F64) -> F64:
            update(gyro, accel)
            return quaternion()

        w, x, y, z = np.array(list(map(step, gyr_dps, acc_g))).reshape(n, 4).T

        # Up (world z) in the body frame is the third row of the body->world
        # rotation; roll is its angle in the body's y-z plane.
        up = np.empty((n, 3))
        up[:, 0] = 2.0 * (x * z - w * y)
        up[:, 1] = 2.0 * (y * z + w * x)
        up[:, 2] = 1.0 - 2.0 * (x * x + y * y)
        out.lean_deg[piece] = np.arctan2(up[:, 1], up[:, 2]) * _RAD_TO_DEG
        out.yaw_rate_rads[piece] = np.einsum("ij,ij->i", up, gyr)

        # Longitudinal: the motion acceleration along the horizontal heading.
        linear = acc_mps2 - STANDARD_GRAVITY_MPS2 * up
        row0 = np.stack([1.0 - 2.0 * (y * y + z * z), 2.0 * (x * y - w * z),
                         2.0 * (x * z + w * y)], axis=1)  # fmt: skip
        row1 = np.stack([2.0 * (x * y + w * z), 1.0 - 2.0 * (x * x + z * z),
                         2.0 * (y * z - w * x)], axis=1)  # fmt: skip
        east = np.einsum("ij,ij->i", row0, linear)
        north = np.einsum("ij,ij->i", row1, linear)
        heading_norm = np.maximum(np.hypot(row0[:, 0], row1[:, 0]), 1e-6)
        out.long_accel_mps2[piece] = (east * row0[:, 0] + north * row1[:, 0]) / (
            heading_norm
        )

        # Disagreement with a trustworthy accelerometer feeds the bias loop.
        norm_g = np.linalg.norm(acc_g, axis=1)
        measured_up = acc_g / np.maximum(norm_g, 1e-6)[:, None]
        trusted = np.abs(norm_g - 1.0) < BIAS_TRUST_G
        trusted &= np.einsum("ij,ij->i", up, measured_up) > _TRUST_COS
        if trusted.any():
            feedback = np.cross(up[trusted], measured_up[trusted])
            self._feedback_sum += feedback.sum(axis=0)
            self._feedback_count += int(trusted.sum())

    def _update_bias(self) -> None:
        """Close one bias block: a tilt error that persists is the bias's
        doing (error = bias / gain), so the estimate moves with it."""
        if self._feedback_count >= BIAS_BLOCK_POINTS // 2:
            mean_feedback = self._feedback_sum / self._feedback_count
            block_s = BIAS_BLOCK_POINTS / MODEL_RATE_HZ
            self.gyro_bias_rads += BIAS_GAIN_PER_S2 * mean_feedback * block_s
            np.clip(
                self.gyro_bias_rads, -MAX_BIAS_RADS, MAX_BIAS_RADS,
                out=self.gyro_bias_rads,
            )  # fmt: skip
        self._feedback_sum[:] = 0.0
        self._feedback_count = 0
