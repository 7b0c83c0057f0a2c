"""After a crash: lying still, then (optionally) getting up.

Lying: the attitude the crash ended in, gravity only, and a faint breathing
motion of the chest. Getting up: one rotation about a fixed body axis from the
lying attitude to the standing attitude the following walk starts with (so
there is no jump), with a small vertical push as the rider rises.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from .frames import axis_angle_matrices, matrix_to_euler, to_body
from .parts import PartSamples
from .spec import Activity

__all__ = ["GetUpPart", "LyingPart"]

F64 = npt.NDArray[np.float64]

# Breathing: chest motion at 15 breaths a minute, a few milli-g.
_BREATH_HZ = 0.25
_BREATH_G = 0.004
# Vertical push while standing up (g, peak).
_RISE_G = 0.15


def _still_samples(
    r_bw: F64, f_world: F64, omega: F64, heading_rad: float, activity: Activity
) -> PartSamples:
    n = len(r_bw)
    _, _, roll = matrix_to_euler(r_bw)
    return PartSamples(
        f_body_g=to_body(r_bw, f_world),
        omega_rad_s=omega,
        body_to_world=r_bw,
        speed_m_s=np.zeros(n),
        travel_heading_rad=np.full(n, heading_rad),
        long_accel_m_s2=np.zeros(n),
        yaw_rate_rad_s=np.zeros(n),
        roll_rad=roll,
        on_bike=np.zeros(n, dtype=bool),
        activity=np.full(n, activity, dtype=np.uint8),
        engine_rpm=np.zeros(n),
        road_roughness_g=np.zeros(n),
    )


@dataclass(frozen=True)
class LyingPart:
    """Lying motionless in one attitude."""

    body_to_world: F64
    heading_rad: float
    t_start_s: float
    t_end_s: float

    def evaluate(self, t_s: F64) -> PartSamples:
        """Return the lying samples at ``t_s``."""
        n = len(t_s)
        r_bw = np.broadcast_to(self.body_to_world, (n, 3, 3)).copy()
        f_world = np.zeros((n, 3))
        f_world[:, 2] = 1.0
        chest = r_bw[:, :, 0]  # body x (chest) in the world
        breath = _BREATH_G * np.sin(2 * np.pi * _BREATH_HZ * t_s)
        f_world += breath[:, None] * chest
        return _still_samples(
            r_bw, f_world, np.zeros((n, 3)), self.heading_rad, Activity.LYING
        )


@dataclass(frozen=True)
class GetUpPart:
    """Rotate from the lying attitude to a standing one about a fixed axis."""

    lying_body_to_world: F64
    standing_body_to_world: F64
    heading_rad: float
    t_start_s: float
    t_end_s: float

    def _axis_angle(self) -> tuple[F64, float]:
        rel = self.lying_body_to_world.T @ self.standing_body_to_world
        angle = math.acos(float(np.clip((np.trace(rel) - 1.0) / 2.0, -1.0, 1.0)))
        axis = np.array(
            [rel[2, 1] - rel[1, 2], rel[0, 2] - rel[2, 0], rel[1, 0] - rel[0, 1]]
        )
        if np.linalg.norm(axis) < 1e-6:
            if angle < 1e-6:
                return np.array([1.0, 0.0, 0.0]), 0.0
            # Half a turn: the axis is the eigenvector of eigenvalue 1.
            values, vectors = np.linalg.eig(rel)
            axis = np.real(vectors[:, int(np.argmin(np.abs(values - 1.0)))])
        return axis / np.linalg.norm(axis), angle

    def evaluate(self, t_s: F64) -> PartSamples:
        """Return the getting-up samples at ``t_s``."""
        axis, angle = self._axis_angle()
        span = self.t_end_s - self.t_start_s
        u = np.clip((t_s - self.t_start_s) / span, 0.0, 1.0)
        progress = (1.0 - np.cos(np.pi * u)) / 2.0
        rate = angle * np.pi / (2 * span) * np.sin(np.pi * u)
        r_bw = self.lying_body_to_world[None, :, :] @ axis_angle_matrices(
            axis, angle * progress
        )
        f_world = np.zeros((len(t_s), 3))
        f_world[:, 2] = 1.0 + _RISE_G * np.sin(2 * np.pi * u)
        omega = rate[:, None] * axis[None, :]
        return _still_samples(
            r_bw, f_world, omega, self.heading_rad, Activity.GETTING_UP
        )
