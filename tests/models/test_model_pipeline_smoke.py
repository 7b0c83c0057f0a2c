"""A small train -> export (float and int8) -> evaluate run through the CLI.

This is ``make test``'s guard that the model pipeline still works end to end:
a few recordings of every kind, two epochs, both exports checked on LiteRT,
and the held-out evaluation printing its event figures. It says nothing
about model quality (that is ``crash-model evaluate --full``).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from models import contract
from models.cli import main
from models.head import head_from_metadata
from models.registry import load_model_info
from models.runtime import CrashModelRunner

pytestmark = pytest.mark.slow

SMALL = [
    "--crash-rides", "12",
    "--normal-rides", "4",
    "--offbike-sessions", "3",
    "--validation-crash-rides", "4",
    "--validation-normal-rides", "2",
    "--validation-offbike-sessions", "1",
    "--epochs", "2",
    "--seed", "3",
]  # fmt: skip


def test_train_export_evaluate_smoke(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("tensorflow")
    import keras

    run_dir = tmp_path / "run"
    model_path = tmp_path / "model" / "crash_smoke.tflite"
    assert main(["train", "--out", str(run_dir), *SMALL]) == 0
    run = json.loads((run_dir / "run.json").read_text())
    assert run["training"]["epochs_run"] == 2
    assert run["training"]["train_positive_windows"] > 200
    assert set(run["training"]["data"]["by_scenario_h"]) >= {"offbike"}
    assert run["validation"]["event"]["total"]["crashes"] == 4
    assert 0.0 < run["decision"]["threshold"] < 1.0

    assert main(["export", "--run", str(run_dir), "--out", str(model_path)]) == 0
    info = load_model_info(model_path)
    assert info.metadata.training["export_check"]["max_abs_diff_vs_keras"] <= 1e-4
    assert info.metadata.validation == run["validation"]
    assert info.metadata.normalisation["inside_model"] is True
    assert model_path.with_suffix(".keras").is_file()
    assert model_path.with_suffix(".calibration.npz").is_file()

    # The exported file, the Keras model and the NumPy head agree.
    windows = np.load(run_dir / "check_windows.npy")[:40]
    keras_out = keras.saving.load_model(run_dir / "model.keras").predict(
        windows, verbose=0
    )
    lite_out = CrashModelRunner(model_path, batch_windows=16).predict(windows)
    np.testing.assert_allclose(
        lite_out.probability, keras_out[contract.OUTPUT_PROBABILITY][:, 0], atol=1e-4
    )
    head = head_from_metadata(info.metadata)
    np.testing.assert_allclose(
        head.probability(lite_out.embedding), lite_out.probability, atol=1e-4
    )

    capsys.readouterr()
    small_eval = [
        "--crash-rides",
        "3",
        "--normal-rides",
        "2",
        "--offbike-sessions",
        "1",
    ]
    figures = tmp_path / "figures.json"
    assert (
        main(
            [
                "evaluate",
                "--model",
                str(model_path),
                *small_eval,
                "--json",
                str(figures),
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert "by scenario:" in printed and "targets:" in printed
    total = json.loads(figures.read_text())["models"]
    (only,) = total.values()
    assert only["total"]["crashes"] == 3
    assert only["total"]["offbike_h"] > 0 and only["total"]["riding_h"] > 0
    # Evaluating on the training seed is refused.
    assert main(["evaluate", "--model", str(model_path), "--seed", "3"]) == 5
