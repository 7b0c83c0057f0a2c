"""Event records in a log never change what the model sees or says.

The airbag record is a label, never an input: the same synthesised ride is
encoded twice with ``LogWriter``, with event records (the airbag and rider
button presses) and without any, decoded with ``read_log``, cut into windows
through the contract functions and scored. Every window's output must be
bit-for-bit the same. The gateway's own pipeline gets the same check.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from edge_agent.processing.crash import CrashDetector
from edge_agent.processing.pipeline import ProcessOptions, process_log
from firmware_bridge.logformat import (
    EventKind,
    LogWriter,
    physical_to_raw,
    raw_to_physical,
    read_log,
)
from firmware_bridge.synth import RideSpec, SynthRide, synthesise
from models import contract
from models.dataset import imu_to_model_input, ride_windows
from models.registry import ModelInfo
from models.runtime import CrashModelRunner

SAMPLES_PER_BLOCK = 1024
# A ride no training run used (the shipped model's seeds are far below).
SPEC = RideSpec(
    seed=987_654_321,
    scenario="city",
    riding_s=60.0,
    sample_rate_hz=400.0,
    crash="highside",
    walk_before_s=10.0,
    walk_after_s=10.0,
    with_mag=False,
    with_gnss=False,
)
BUTTON_EVERY_S = 7.0


@pytest.fixture(scope="module")
def ride() -> SynthRide:
    return synthesise(SPEC)


def _write_log(path: Path, ride: SynthRide, with_events: bool) -> None:
    """Encode ``ride`` as a v1 log, events after the IMU block holding them."""
    header = ride.header
    acc_raw = physical_to_raw(ride.accel_g, header.accel_full_scale_g)
    gyr_raw = physical_to_raw(ride.gyro_dps, header.gyro_full_scale_dps)
    # The synthesiser's values are already what a decoder reads back.
    np.testing.assert_array_equal(
        raw_to_physical(acc_raw, header.accel_full_scale_g), ride.accel_g
    )

    # (sample index, counter value, kind) of every event record: the airbag
    # records the synthesiser made, and a button press every few seconds.
    elapsed_us = (ride.t_us.astype(np.int64) - int(ride.t_us[0])) % (1 << 32)
    airbag_t_us = ride.events["t_us"]
    airbag_index = np.searchsorted(
        elapsed_us, (airbag_t_us.astype(np.int64) - int(ride.t_us[0])) % (1 << 32)
    )
    assert len(airbag_index) >= 1
    step = round(BUTTON_EVERY_S * header.sample_rate_hz)
    events = sorted(
        [
            (int(i), int(t), EventKind.AIRBAG_DEPLOYED)
            for i, t in zip(airbag_index, airbag_t_us, strict=True)
        ]
        + [
            (i, int(ride.t_us[i]), EventKind.RIDER_BUTTON)
            for i in range(step, len(ride.t_us), step)
        ]
    )
    with open(path, "wb") as stream:
        writer = LogWriter(stream, header, samples_per_block=SAMPLES_PER_BLOCK)
        for start in range(0, len(ride.t_us), SAMPLES_PER_BLOCK):
            stop = start + SAMPLES_PER_BLOCK
            here = [(t, kind) for i, t, kind in events if start <= i < stop]
            if with_events and here:
                writer.write_events([t for t, _ in here], [int(k) for _, k in here])
            writer.write_imu(
                ride.t_us[start:stop], acc_raw[start:stop], gyr_raw[start:stop]
            )
        writer.close()


def _decoded_windows(path: Path) -> tuple[npt.NDArray[np.float32], int]:
    """Decode a log and cut contract windows; return them and the event count."""
    log = read_log(path)
    t_us = log.imu["t_us"].astype(np.int64)
    steps_us = np.diff(t_us) % (1 << 32)  # the u32 counter may wrap
    t_s = np.concatenate([[0.0], np.cumsum(steps_us)]) / 1e6
    accel_g = raw_to_physical(log.imu["acc"], log.header.accel_full_scale_g)
    gyro_dps = raw_to_physical(log.imu["gyr"], log.header.gyro_full_scale_dps)
    _, model_input = imu_to_model_input(
        t_s, accel_g, gyro_dps, log.header.sample_rate_hz
    )
    return np.ascontiguousarray(contract.make_windows(model_input)), len(log.events)


def test_event_records_do_not_change_any_window_output(
    ride: SynthRide,
    shipped_info: ModelInfo,
    shipped_runner: CrashModelRunner,
    tmp_path: Path,
) -> None:
    with_path, without_path = tmp_path / "with.log", tmp_path / "without.log"
    _write_log(with_path, ride, with_events=True)
    _write_log(without_path, ride, with_events=False)

    windows_with, events_with = _decoded_windows(with_path)
    windows_without, events_without = _decoded_windows(without_path)
    buttons = (len(ride.t_us) - 1) // round(BUTTON_EVERY_S * SPEC.sample_rate_hz)
    assert events_with == len(ride.events) + buttons
    assert events_without == 0
    assert len(windows_with) > 100
    np.testing.assert_array_equal(windows_with, windows_without)

    out_with = shipped_runner.predict(windows_with)
    out_without = shipped_runner.predict(windows_without)
    np.testing.assert_array_equal(out_with.probability, out_without.probability)
    np.testing.assert_array_equal(out_with.embedding, out_without.embedding)
    # A ride with a real crash in it, so the comparison covers high outputs too.
    assert out_with.probability.max() >= shipped_info.metadata.threshold

    # Training windows come from the same numbers the gateway decodes.
    training = ride_windows(SPEC)
    np.testing.assert_allclose(training.windows, windows_with, rtol=0, atol=1e-6)


def test_gateway_verdict_ignores_event_records(
    ride: SynthRide, shipped_info: ModelInfo, tmp_path: Path
) -> None:
    detector = CrashDetector(shipped_info)
    options = ProcessOptions(fsync=False)
    verdicts = []
    for with_events in (True, False):
        log_path = tmp_path / f"events_{with_events}.log"
        _write_log(log_path, ride, with_events)
        result = process_log(
            log_path,
            "rider-1",
            "suit-1",
            tmp_path / f"out_{with_events}",
            detector,
            options=options,
        )
        verdicts.append((result.crash.as_dict(), result.crash.windows))
    assert verdicts[0] == verdicts[1]
    assert verdicts[0][0]["detected"] is True
