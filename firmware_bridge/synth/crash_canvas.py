"""Draw a crash on the sample grid: forces, rotations, slide, rest.

A crash is drawn in the *track frame* (x along the direction of travel at
onset, y to its left, z up) as a sum of parts: a base specific force (ground
support, tyre or tumbling friction, free fall), impact pulses (half sines of
a few tens of milliseconds), and rotations about body or world axes whose
rate follows a half sine, so each turns by exactly the angle asked for. The
first 80 ms blend the rider's motion at onset into the crash.

``render`` then adds the slide: friction ``mu g`` from the slide start until
the speed (integrated from the along-track specific force) reaches zero, with
scraping noise and a spin about the vertical that both fade with the speed.
After coming to rest the body settles so that its z axis is horizontal (a
lying rider), and the attitude is integrated sample by sample to give the
body-frame specific force and angular rate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from .constants import G_M_S2
from .frames import matrix_to_euler, rotvec_step, to_body, to_world
from .parts import PartSamples
from .spec import Activity

__all__ = ["CrashCanvas", "CrashTrack", "OnsetState"]

F64 = npt.NDArray[np.float64]

# Blend from the rider's motion into the crash: the first 80 ms.
_BLEND_S = 0.08
# Turning the body to lie flat after coming to rest, then lying still; both
# still part of the crash span.
_SETTLE_S = 0.6
_STILL_S = 0.4
# Scraping on asphalt: broadband specific force (g, 1 sigma) at slide start.
_SCRAPE_G = 0.25
# An impact pulse spans at least this many samples: a sensor's anti-alias
# filter smears a pulse shorter than its sampling period (impulse kept).
_MIN_PULSE_SAMPLES = 3.0


@dataclass(frozen=True)
class OnsetState:
    """The rider's state at the instant the crash begins."""

    t_s: float
    speed_m_s: float
    heading_rad: float
    body_to_world: F64  # (3, 3)
    omega_rad_s: F64  # (3,)
    f_track_g: F64  # (3,) specific force in the track frame
    roll_rad: float

    @staticmethod
    def from_samples(t_s: float, s: PartSamples) -> OnsetState:
        """Return the onset state from a one-sample ``PartSamples``."""
        heading = float(s.travel_heading_rad[0])
        f_world = to_world(s.body_to_world[0], s.f_body_g[0])
        c, sn = math.cos(heading), math.sin(heading)
        f_track = np.array(
            [
                c * f_world[0] + sn * f_world[1],
                -sn * f_world[0] + c * f_world[1],
                f_world[2],
            ]
        )
        return OnsetState(
            t_s=t_s,
            speed_m_s=float(s.speed_m_s[0]),
            heading_rad=heading,
            body_to_world=s.body_to_world[0].copy(),
            omega_rad_s=s.omega_rad_s[0].copy(),
            f_track_g=f_track,
            roll_rad=float(s.roll_rad[0]),
        )


@dataclass(frozen=True)
class CrashTrack:
    """A rendered crash: samples from onset to lying still, and its truth."""

    kind: str
    t_start_s: float
    t_end_s: float
    rate_hz: float
    samples: PartSamples
    impact_s: float
    peak_g: float
    airbag_s: float
    rest_s: float
    final_body_to_world: F64

    def evaluate(self, t_s: F64) -> PartSamples:
        """Return the crash samples at ``t_s`` (on the ride's sample grid)."""
        index = np.rint((t_s - self.t_start_s) * self.rate_hz).astype(np.intp)
        return self.samples.take(np.clip(index, 0, len(self.samples) - 1))


def _integrate(r0: F64, w_body: F64, w_world: F64, dt: float) -> tuple[F64, F64, F64]:
    """Integrate attitude; return per-sample R, body rates, and the next R."""
    n = len(w_body)
    r_out = np.empty((n, 3, 3))
    omega = np.empty((n, 3))
    cur = r0.copy()
    for i in range(n):
        r_out[i] = cur
        w = w_body[i] + cur.T @ w_world[i]
        omega[i] = w
        cur = cur @ rotvec_step(w * dt)
    return r_out, omega, cur


class CrashCanvas:
    """Track-frame force and rotation arrays of one crash (see module doc)."""

    def __init__(self, onset: OnsetState, rate_hz: float, duration_s: float) -> None:
        self.onset = onset
        self.rate_hz = rate_hz
        self.dt = 1.0 / rate_hz
        n = math.ceil(duration_s * rate_hz)
        self.tau = np.arange(n) / rate_hz
        self.base = np.zeros((n, 3))
        self.base[:, 2] = 1.0
        self.pulses = np.zeros((n, 3))
        self.w_body = np.zeros((n, 3))
        self.w_world = np.zeros((n, 3))

    def step(self, t0: float, t1: float) -> F64:
        """Return 0 before t0, 1 after t1, a raised cosine between."""
        u = np.clip((self.tau - t0) / max(t1 - t0, 1e-9), 0.0, 1.0)
        return (1.0 - np.cos(np.pi * u)) / 2.0

    def window(self, t0: float, t1: float) -> npt.NDArray[np.bool_]:
        """Return the samples in ``[t0, t1)``."""
        return (self.tau >= t0) & (self.tau < t1)

    def pulse(
        self, centre_s: float, width_s: float, peak_g: float, direction: F64
    ) -> None:
        """Add a half-sine impact of ``peak_g`` along ``direction`` (track frame)."""
        width = max(width_s, _MIN_PULSE_SAMPLES / self.rate_hz)
        peak = peak_g * width_s / width
        u = (self.tau - (centre_s - width / 2)) / width
        shape = np.where((u > 0) & (u < 1), np.sin(np.pi * np.clip(u, 0, 1)), 0.0)
        unit = np.asarray(direction, dtype=np.float64)
        self.pulses += peak * shape[:, None] * (unit / np.linalg.norm(unit))[None, :]

    def _rate_profile(self, t0: float, t1: float, angle_rad: float) -> F64:
        span = max(t1 - t0, 1e-6)
        u = (self.tau - t0) / span
        inside = (u >= 0) & (u < 1)
        return np.where(inside, angle_rad * np.pi / (2 * span) * np.sin(np.pi * u), 0.0)

    def body_turn(self, axis: F64, t0: float, t1: float, angle_rad: float) -> None:
        """Rotate about a body axis by ``angle_rad`` between t0 and t1."""
        unit = np.asarray(axis, dtype=np.float64)
        unit = unit / np.linalg.norm(unit)
        self.w_body += self._rate_profile(t0, t1, angle_rad)[:, None] * unit[None, :]

    def world_turn(self, axis: F64, t0: float, t1: float, angle_rad: float) -> None:
        """Rotate about a world axis by ``angle_rad`` between t0 and t1."""
        unit = np.asarray(axis, dtype=np.float64)
        unit = unit / np.linalg.norm(unit)
        self.w_world += self._rate_profile(t0, t1, angle_rad)[:, None] * unit[None, :]

    def render(
        self,
        kind: str,
        slide_start_s: float,
        mu: float,
        spin_rad_s: float,
        airbag_s: float,
        rng: np.random.Generator,
    ) -> CrashTrack:
        """Add the slide, integrate the attitude and return the crash samples."""
        onset = self.onset
        blend = self.step(0.0, _BLEND_S)[:, None]
        f_track = (1.0 - blend) * onset.f_track_g[None, :] + blend * self.base
        f_track += self.pulses

        # Slide: friction until the along-track speed reaches zero.
        def speed(fx: F64) -> F64:
            before = np.concatenate([[0.0], np.cumsum(fx)[:-1]])
            return onset.speed_m_s + G_M_S2 * self.dt * before

        i_slide = min(int(np.searchsorted(self.tau, slide_start_s)), len(self.tau) - 1)
        v_slide = max(float(speed(f_track[:, 0])[i_slide]), 0.0)
        rest_s = slide_start_s + v_slide / (mu * G_M_S2)
        sliding = self.window(slide_start_s, rest_s)
        f_track[:, 0] -= mu * sliding
        v = np.maximum(speed(f_track[:, 0]), 0.0)
        v[self.tau >= rest_s] = 0.0
        fade = np.where(sliding, v / max(v_slide, 1e-6), 0.0)
        f_track += rng.normal(0.0, _SCRAPE_G, size=f_track.shape) * fade[:, None]
        self.w_world[:, 2] += spin_rad_s * fade

        # Trim to rest + settle + still; nothing moves after rest but the settle.
        n = min(
            len(self.tau),
            math.ceil((rest_s + _SETTLE_S + _STILL_S) * self.rate_hz),
        )
        i_rest = min(n, math.ceil(rest_s * self.rate_hz))
        f_track, v = f_track[:n], v[:n]
        f_track[i_rest:] = (0.0, 0.0, 1.0)
        w_body = (1.0 - blend[:n]) * onset.omega_rad_s[None, :] + blend[
            :n
        ] * self.w_body[:n]
        w_world = self.w_world[:n].copy()
        w_body[i_rest:] = 0.0
        w_world[i_rest:] = 0.0

        r_first, om_first, r_rest = _integrate(
            onset.body_to_world, w_body[:i_rest], w_world[:i_rest], self.dt
        )
        z_world = r_rest[:, 2]
        axis = np.cross(z_world, (0.0, 0.0, 1.0))
        if np.linalg.norm(axis) < 1e-6:
            axis = r_rest[:, 0]
        lift = math.asin(float(np.clip(z_world[2], -1.0, 1.0)))
        self.tau = self.tau[:n]
        self.w_world = w_world
        self.world_turn(axis, rest_s, rest_s + _SETTLE_S, -lift)
        r_last, om_last, r_final = _integrate(
            r_rest, w_body[i_rest:], self.w_world[i_rest:], self.dt
        )
        r_bw = np.concatenate([r_first, r_last])
        omega = np.concatenate([om_first, om_last])

        c, s = math.cos(onset.heading_rad), math.sin(onset.heading_rad)
        f_world = np.stack(
            [
                c * f_track[:, 0] - s * f_track[:, 1],
                s * f_track[:, 0] + c * f_track[:, 1],
                f_track[:, 2],
            ],
            axis=-1,
        )
        magnitude = np.linalg.norm(f_track, axis=1)
        i_peak = int(np.argmax(magnitude))
        _, _, roll = matrix_to_euler(r_bw)
        samples = PartSamples(
            f_body_g=to_body(r_bw, f_world),
            omega_rad_s=omega,
            body_to_world=r_bw,
            speed_m_s=v,
            travel_heading_rad=np.full(n, onset.heading_rad),
            long_accel_m_s2=np.zeros(n),
            yaw_rate_rad_s=np.zeros(n),
            roll_rad=roll,
            on_bike=np.zeros(n, dtype=bool),
            activity=np.full(n, Activity.CRASH, dtype=np.uint8),
            engine_rpm=np.zeros(n),
            road_roughness_g=np.zeros(n),
        )
        return CrashTrack(
            kind=kind,
            t_start_s=onset.t_s,
            t_end_s=onset.t_s + n / self.rate_hz,
            rate_hz=self.rate_hz,
            samples=samples,
            impact_s=onset.t_s + i_peak / self.rate_hz,
            peak_g=float(magnitude[i_peak]),
            airbag_s=onset.t_s + airbag_s,
            rest_s=onset.t_s + rest_s,
            final_body_to_world=r_final,
        )
