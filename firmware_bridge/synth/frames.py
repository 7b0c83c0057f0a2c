"""Rotations between the world frame (ENU) and the suit's body frame (FLU).

World: x east, y north, z up. Body: x forward, y left, z up. The suit's
attitude is the Z-Y-X (yaw, pitch, roll) Euler sequence, body-to-world
``R = Rz(yaw) @ Ry(pitch) @ Rx(roll)``, so that

- yaw is counter-clockwise from east, a positive yaw rate turns left;
- pitch is positive nose-down (the torso leaning forward);
- roll is positive leaning right (about the forward axis, y towards z).

``lean`` everywhere in the synthesiser is this roll angle. All functions take
arrays of ``n`` angles and return stacked ``(n, 3)`` or ``(n, 3, 3)`` arrays.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

__all__ = [
    "axis_angle_matrices",
    "body_rates",
    "euler_matrices",
    "matrix_to_euler",
    "rotvec_step",
    "to_body",
    "to_world",
]

F64 = npt.NDArray[np.float64]


def euler_matrices(yaw: F64, pitch: F64, roll: F64) -> F64:
    """Return body-to-world matrices ``Rz(yaw) Ry(pitch) Rx(roll)``, (n, 3, 3)."""
    cy, sy = np.cos(yaw), np.sin(yaw)
    cp, sp = np.cos(pitch), np.sin(pitch)
    cr, sr = np.cos(roll), np.sin(roll)
    r = np.empty((*np.shape(yaw), 3, 3))
    r[..., 0, 0] = cy * cp
    r[..., 0, 1] = cy * sp * sr - sy * cr
    r[..., 0, 2] = cy * sp * cr + sy * sr
    r[..., 1, 0] = sy * cp
    r[..., 1, 1] = sy * sp * sr + cy * cr
    r[..., 1, 2] = sy * sp * cr - cy * sr
    r[..., 2, 0] = -sp
    r[..., 2, 1] = cp * sr
    r[..., 2, 2] = cp * cr
    return r


def matrix_to_euler(r: F64) -> tuple[F64, F64, F64]:
    """Return (yaw, pitch, roll) of body-to-world matrices (inverse of above)."""
    roll = np.arctan2(r[..., 2, 1], r[..., 2, 2])
    pitch = -np.arcsin(np.clip(r[..., 2, 0], -1.0, 1.0))
    yaw = np.arctan2(r[..., 1, 0], r[..., 0, 0])
    return yaw, pitch, roll


def body_rates(
    yaw_rate: F64, pitch: F64, pitch_rate: F64, roll: F64, roll_rate: F64
) -> F64:
    """Return the body-frame angular velocity (n, 3) from Euler angle rates."""
    sp, cp = np.sin(pitch), np.cos(pitch)
    sr, cr = np.sin(roll), np.cos(roll)
    out = np.empty((*np.shape(yaw_rate), 3))
    out[..., 0] = roll_rate - yaw_rate * sp
    out[..., 1] = pitch_rate * cr + yaw_rate * cp * sr
    out[..., 2] = -pitch_rate * sr + yaw_rate * cp * cr
    return out


def to_body(r: F64, v_world: F64) -> F64:
    """Express world vectors in the body frame: ``R.T @ v`` per sample."""
    out: F64 = np.einsum("...ji,...j->...i", r, v_world)
    return out


def to_world(r: F64, v_body: F64) -> F64:
    """Express body vectors in the world frame: ``R @ v`` per sample."""
    out: F64 = np.einsum("...ij,...j->...i", r, v_body)
    return out


def axis_angle_matrices(axis: F64, angle: F64) -> F64:
    """Return rotations by ``angle`` (n,) about one unit ``axis`` (3,), (n, 3, 3)."""
    x, y, z = axis / np.linalg.norm(axis)
    c, s = np.cos(angle), np.sin(angle)
    t = 1.0 - c
    r = np.empty((*np.shape(angle), 3, 3))
    r[..., 0, 0] = c + x * x * t
    r[..., 0, 1] = x * y * t - z * s
    r[..., 0, 2] = x * z * t + y * s
    r[..., 1, 0] = y * x * t + z * s
    r[..., 1, 1] = c + y * y * t
    r[..., 1, 2] = y * z * t - x * s
    r[..., 2, 0] = z * x * t - y * s
    r[..., 2, 1] = z * y * t + x * s
    r[..., 2, 2] = c + z * z * t
    return r


def rotvec_step(rotvec: F64) -> F64:
    """Return the rotation matrix of one rotation vector (3,) (Rodrigues)."""
    angle = float(np.linalg.norm(rotvec))
    if angle < 1e-12:
        return np.eye(3)
    k = rotvec / angle
    kx = np.array([[0.0, -k[2], k[1]], [k[2], 0.0, -k[0]], [-k[1], k[0], 0.0]])
    out: F64 = np.eye(3) + math.sin(angle) * kx + (1.0 - math.cos(angle)) * (kx @ kx)
    return out
