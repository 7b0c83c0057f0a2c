"""A tiny train -> export -> evaluate run through the real code (one epoch)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from models import contract
from models.cli import main
from models.registry import load_model_info
from models.runtime import CrashModelRunner

pytestmark = pytest.mark.slow


def test_train_export_evaluate_smoke(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("tensorflow")
    import keras

    run_dir = tmp_path / "run"
    model_path = tmp_path / "model" / "crash_smoke.tflite"
    args = ["--rides", "2", "--validation-rides", "2", "--epochs", "1", "--seed", "3"]
    assert main(["train", "--out", str(run_dir), *args]) == 0
    run = json.loads((run_dir / "run.json").read_text())
    assert run["training"]["epochs_run"] == 1
    assert run["training"]["train_positive_windows"] > 20
    assert run["validation"]["event"]["crashes"] == 1
    assert 0.0 < run["decision"]["threshold"] < 1.0

    assert main(["export", "--run", str(run_dir), "--out", str(model_path)]) == 0
    info = load_model_info(model_path)
    assert info.metadata.training["export_check"]["max_abs_diff_vs_keras"] <= 1e-4
    assert info.metadata.validation == run["validation"]

    # The exported file and the Keras model agree on fresh windows too.
    windows = np.load(run_dir / "check_windows.npy")[:40]
    keras_out = keras.saving.load_model(run_dir / "model.keras").predict(
        windows, verbose=0
    )
    lite_out = CrashModelRunner(model_path, batch_windows=16).predict(windows)
    np.testing.assert_allclose(
        lite_out.probability, keras_out[contract.OUTPUT_PROBABILITY][:, 0], atol=1e-4
    )
    np.testing.assert_allclose(
        lite_out.embedding, keras_out[contract.OUTPUT_EMBEDDING], atol=1e-4
    )

    capsys.readouterr()
    assert main(["evaluate", "--model", str(model_path), "--rides", "2"]) == 0
    printed = capsys.readouterr().out
    assert "crashes: " in printed and "AUC" in printed
    # Evaluating on the training seed is refused.
    assert main(["evaluate", "--model", str(model_path), "--seed", "3"]) == 5
