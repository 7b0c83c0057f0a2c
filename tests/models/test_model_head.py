"""The model head in NumPy, and rebuilding a TFLite model with new head weights."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from models import contract
from models.errors import ModelMetadataError
from models.head import ModelHead, head_from_metadata, load_head
from models.registry import ModelInfo, load_model_info, shipped_path
from models.runtime import CrashModelRunner

WINDOW_SHAPE = (contract.WINDOW_SAMPLES, len(contract.INPUT_CHANNELS))


def _windows(count: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    windows = rng.normal(0.0, 0.3, (count, *WINDOW_SHAPE)).astype(np.float32)
    windows[:, :, 2] += 1.0
    # A few hard impacts so both ends of the sigmoid are exercised.
    windows[::4, 90:95, :3] += rng.normal(0.0, 8.0, (1, 5, 3)).astype(np.float32)
    return windows


def test_head_probability_is_the_model_output(
    shipped_info: ModelInfo, shipped_runner: CrashModelRunner
) -> None:
    head = head_from_metadata(shipped_info.metadata)
    assert head.embedding_dim == shipped_info.metadata.embedding_size
    assert head.kernel.dtype == np.float32

    outputs = shipped_runner.predict(_windows(96))
    np.testing.assert_allclose(
        head.probability(outputs.embedding), outputs.probability, atol=1e-5
    )


def test_head_probability_is_a_stable_sigmoid() -> None:
    head = ModelHead(np.array([1.0, -2.0], np.float32), 0.5)
    embeddings = np.array([[0.0, 0.0], [1000.0, 0.0], [0.0, 1000.0]], np.float32)
    p = head.probability(embeddings)
    assert p[0] == pytest.approx(1.0 / (1.0 + np.exp(-0.5)))
    assert p[1] == 1.0 and p[2] == 0.0
    assert head.probability(np.zeros(2)).shape == (1,)
    with pytest.raises(ValueError, match=r"\(n, 2\)"):
        head.probability(np.zeros((3, 4)))


def test_head_round_trips_through_dict() -> None:
    head = ModelHead(np.linspace(-1, 1, 32).astype(np.float32), -3.25)
    again = ModelHead.from_dict(json.loads(json.dumps(head.to_dict())), "x.json")
    np.testing.assert_array_equal(again.kernel, head.kernel)
    assert again.bias == head.bias


@pytest.mark.parametrize(
    ("section", "field"),
    [
        ({"kernel": [1.0, "a"], "bias": 0.0}, "head.kernel"),
        ({"kernel": [1.0], "bias": None}, "head.bias"),
        ({"kernel": [], "bias": 0.0}, "head"),
        ({"kernel": [float("nan")], "bias": 0.0}, "head"),
        ([1, 2], "head"),
    ],
)
def test_malformed_head_names_file_and_field(section: object, field: str) -> None:
    with pytest.raises(ModelMetadataError, match=rf"m\.json: field '{field}'"):
        ModelHead.from_dict(section, "m.json")


def test_head_length_must_match_embedding(
    shipped_info: ModelInfo, tmp_path: Path
) -> None:
    data = shipped_info.metadata.to_dict()
    data["head"] = {"kernel": [0.1, 0.2], "bias": 0.0}
    path = tmp_path / "m.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ModelMetadataError, match=r"2 values, but outputs\.embedding"):
        load_head(path)
    del data["head"]
    path.write_text(json.dumps(data))
    with pytest.raises(ModelMetadataError, match="'head' is missing"):
        load_head(path)


def test_shipped_model_has_keras_and_calibration_beside_it() -> None:
    assert shipped_path(".keras").is_file()
    with np.load(shipped_path(".calibration.npz")) as data:
        assert data["windows"].shape[1:] == WINDOW_SHAPE
        assert len(data["windows"]) >= 100


@pytest.mark.slow
@pytest.mark.parametrize("precision", ["float32", "int8"])
def test_rebuild_with_new_head(
    shipped_info: ModelInfo,
    shipped_runner: CrashModelRunner,
    tmp_path: Path,
    precision: str,
) -> None:
    pytest.importorskip("tensorflow")
    from models.rebuild import rebuild_model

    old = head_from_metadata(shipped_info.metadata)
    rng = np.random.default_rng(5)
    new = ModelHead(old.kernel + rng.normal(0, 0.2, old.embedding_dim), old.bias - 1)
    out = tmp_path / "crash_v1_round3.tflite"
    metadata = rebuild_model(new, out, "1.1.0-round3", precision=precision)

    info = load_model_info(out)
    assert info.metadata == metadata
    assert metadata.precision == precision
    assert metadata.version == "1.1.0-round3"
    rebuilt_head = head_from_metadata(metadata)
    np.testing.assert_allclose(rebuilt_head.kernel, new.kernel)

    windows = _windows(64, seed=1)
    rebuilt = CrashModelRunner(out).predict(windows)
    # The shipped file of the same precision is the reference.
    same = {"float32": shipped_path("_float32.tflite"), "int8": shipped_info.path}
    reference_runner = CrashModelRunner(same[precision])
    reference = reference_runner.predict(windows)
    # The embedding is the shipped network's; only the head changed.
    if precision == "float32":
        np.testing.assert_allclose(rebuilt.embedding, reference.embedding, atol=1e-4)
        np.testing.assert_allclose(
            rebuilt.probability, new.probability(reference.embedding), atol=1e-4
        )
    else:
        # int8 on training-like windows (the calibration set's range): the
        # output is the head of the int8 embedding, and near the float model.
        from models.rebuild import load_calibration

        windows = load_calibration()[:128]
        rebuilt = CrashModelRunner(out).predict(windows)
        reference = reference_runner.predict(windows)
        np.testing.assert_allclose(
            rebuilt.probability, new.probability(rebuilt.embedding), atol=0.03
        )
        close = np.abs(rebuilt.probability - new.probability(reference.embedding))
        assert np.mean(close <= 0.05) >= 0.95
