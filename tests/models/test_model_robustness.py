"""Robustness of the shipped model through the gateway's own pipeline.

Held-out rides (seeds far from any training range) are written as suit logs
with ``LogWriter`` the way a suit would log them, then processed by
``edge_agent.processing.pipeline.process_log`` with the shipped model:

- sensor axes permuted, sign-flipped and rotated by 30 degrees (400 Hz);
- a suit logging at 100 Hz, and one at 1 kHz;
- an accelerometer with a 4 g full scale (impacts clipped at 4 g).

Each variant has a crash ride, which must be found with the crash time
within 1 s, and a ride with wheelies, stoppies, kerbs and potholes overlaid,
which must raise no alarm.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from edge_agent.processing.crash import CrashDetector
from edge_agent.processing.pipeline import ProcessOptions, process_log
from firmware_bridge.logformat import LogWriter, physical_to_raw
from firmware_bridge.synth import RideSpec, synthesise
from firmware_bridge.synth.stunts import overlay_stunts
from models.registry import ModelInfo

SAMPLES_PER_BLOCK = 1024
# Far above every training and validation seed range (seed * 2e6 + count).
SEED_BASE = 9_100_000_000

_AXES = np.array([[0.0, 1.0, 0.0], [0.0, 0.0, -1.0], [-1.0, 0.0, 0.0]])
_C, _S = math.cos(math.radians(30)), math.sin(math.radians(30))
# Permute and flip the axes, then tilt 30 degrees about the new x.
PERMUTED_ROTATED = np.array([[1.0, 0.0, 0.0], [0.0, _C, -_S], [0.0, _S, _C]]) @ _AXES

# variant: (crash kind, scenario, native rate, accel full scale, rotation)
VARIANTS = {
    "permuted_rotated": ("lowside", "city", 400.0, 16, PERMUTED_ROTATED),
    "rate_100hz": ("collision", "highway", 100.0, 16, None),
    "rate_1khz": ("highside", "track", 1000.0, 16, None),
    "clipped_4g": ("lowside", "mixed", 400.0, 4, None),
}


def _write_log(
    path: Path,
    spec: RideSpec,
    rotation: npt.NDArray[np.float64] | None,
    stunts_per_h: float,
) -> float | None:
    """Synthesise ``spec``, change it as asked, write it as a log; return impact."""
    ride = synthesise(spec)
    accel = ride.accel_g.astype(np.float32)
    gyro = ride.gyro_dps.astype(np.float32)
    if stunts_per_h:
        truth = ride.sample_truth
        t_s = ride.t_s - ride.t_s[0]
        added = overlay_stunts(
            t_s,
            accel,
            gyro,
            truth.speed_m_s,
            truth.lean_deg,
            truth.on_bike,
            np.random.default_rng(spec.seed),
            per_hour=stunts_per_h,
        )
        assert len(added) >= 3
    if rotation is not None:
        accel = accel @ rotation.T.astype(np.float32)
        gyro = gyro @ rotation.T.astype(np.float32)
    header = ride.header
    acc_raw = physical_to_raw(accel, header.accel_full_scale_g)
    gyr_raw = physical_to_raw(gyro, header.gyro_full_scale_dps)
    with open(path, "wb") as stream:
        writer = LogWriter(stream, header, samples_per_block=SAMPLES_PER_BLOCK)
        for start in range(0, len(ride.t_us), SAMPLES_PER_BLOCK):
            stop = start + SAMPLES_PER_BLOCK
            writer.write_imu(
                ride.t_us[start:stop], acc_raw[start:stop], gyr_raw[start:stop]
            )
        writer.close()
    impacts = ride.truth.crash_impact_s
    return float(impacts[0]) if impacts else None


@pytest.fixture(scope="module")
def detector(shipped_info: ModelInfo) -> CrashDetector:
    return CrashDetector(shipped_info)


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_crash_found_and_no_false_alarm(
    variant: str, detector: CrashDetector, tmp_path: Path
) -> None:
    crash, scenario, rate_hz, full_scale_g, rotation = VARIANTS[variant]
    seed = SEED_BASE + 10 * sorted(VARIANTS).index(variant)
    options = ProcessOptions(fsync=False)
    for k, with_crash in enumerate((True, False)):
        spec = RideSpec(
            seed=seed + k,
            scenario=scenario if with_crash else "track",
            riding_s=60.0 if with_crash else 150.0,
            sample_rate_hz=rate_hz,
            crash=crash if with_crash else None,
            walk_before_s=10.0,
            walk_after_s=15.0,
            accel_full_scale_g=full_scale_g,
            with_mag=False,
            with_gnss=False,
        )
        log = tmp_path / f"{variant}_{k}.log"
        impact_s = _write_log(log, spec, rotation, 0.0 if with_crash else 300.0)
        result = process_log(
            log, "rider", "suit", tmp_path / f"out{k}", detector, options=options
        )
        verdict = result.crash.as_dict()
        if with_crash:
            assert impact_s is not None
            assert verdict["detected"] is True, (variant, verdict)
            errors = [abs(e["t_offset_s"] - impact_s) for e in verdict["events"]]
            assert min(errors) <= 1.0, (variant, impact_s, verdict)
        else:
            assert verdict["detected"] is False, (variant, verdict)
