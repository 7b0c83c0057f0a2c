"""Noise-free motion samples of one stretch of a ride, and their concatenation.

A ride is a sequence of parts (walking and riding, a crash, lying still,
getting up, walking away); each part turns sample times into ``PartSamples``:
the suit's true specific force and angular rate in the body frame, its
attitude, and the per-sample truth (ground speed, lean, vehicle acceleration,
activity) that the truth file and the training labels are made from.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Protocol

import numpy as np
import numpy.typing as npt

__all__ = ["Part", "PartSamples"]

F64 = npt.NDArray[np.float64]


@dataclass
class PartSamples:
    """Per-sample motion and truth; every array has the same first dimension."""

    f_body_g: F64  # (n, 3) specific force in the body frame, g
    omega_rad_s: F64  # (n, 3) angular velocity in the body frame
    body_to_world: F64  # (n, 3, 3)
    speed_m_s: F64  # ground speed of the suit
    travel_heading_rad: F64  # direction of travel, counter-clockwise from east
    long_accel_m_s2: F64  # vehicle longitudinal acceleration (0 off the bike)
    yaw_rate_rad_s: F64  # path heading rate, positive left
    roll_rad: F64  # lean: Z-Y-X Euler roll, positive right
    on_bike: npt.NDArray[np.bool_]  # riding or stopped on the bike, before a crash
    activity: npt.NDArray[np.uint8]
    engine_rpm: F64  # 0 when the engine is off
    road_roughness_g: F64  # road vibration amplitude (0 when not rolling)

    def __len__(self) -> int:
        return len(self.speed_m_s)

    def take(self, index: npt.NDArray[np.intp]) -> PartSamples:
        """Return the samples at ``index``."""
        return PartSamples(
            **{f.name: getattr(self, f.name)[index] for f in fields(self)}
        )

    @staticmethod
    def concat(parts: Sequence[PartSamples]) -> PartSamples:
        """Join parts in time order."""
        if len(parts) == 1:
            return parts[0]
        return PartSamples(
            **{
                f.name: np.concatenate([getattr(p, f.name) for p in parts])
                for f in fields(PartSamples)
            }
        )


class Part(Protocol):
    """A stretch of the ride ``[t_start_s, t_end_s)`` that can be evaluated."""

    @property
    def t_start_s(self) -> float:
        """Return the first instant of the part."""
        ...

    @property
    def t_end_s(self) -> float:
        """Return the instant after the part."""
        ...

    def evaluate(self, t_s: F64) -> PartSamples:
        """Return the motion at the sample times ``t_s`` (inside the part)."""
        ...
