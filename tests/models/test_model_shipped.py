"""The shipped model file: integrity, contract shape, batching, output lookup."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import flatbuffers
import numpy as np
import pytest
from ai_edge_litert import schema_py_generated as schema
from ai_edge_litert.interpreter import Interpreter

from models import contract
from models.errors import ModelIntegrityError
from models.registry import (
    SHIPPED_MODEL_FILE,
    ModelInfo,
    file_sha256,
    load_model_info,
    metadata_path_for,
)
from models.runtime import CrashModelRunner

WINDOW_SHAPE = (contract.WINDOW_SAMPLES, len(contract.INPUT_CHANNELS))


def _windows(count: int, seed: int = 0) -> np.ndarray:
    """Return plausible riding windows: 1 g up, noise on every channel."""
    rng = np.random.default_rng(seed)
    windows = rng.normal(0.0, 0.2, (count, *WINDOW_SHAPE)).astype(np.float32)
    windows[:, :, 2] += 1.0
    return windows


def test_shipped_model_matches_its_metadata(shipped_info: ModelInfo) -> None:
    meta = shipped_info.metadata
    assert shipped_info.path.name == SHIPPED_MODEL_FILE
    assert file_sha256(shipped_info.path) == meta.sha256
    assert shipped_info.path.stat().st_size == meta.size_bytes
    assert meta.name == "crash-detector"
    assert meta.contract_version == contract.CONTRACT_VERSION
    assert meta.input.shape == [-1, *WINDOW_SHAPE]
    assert meta.input.channels == list(contract.INPUT_CHANNELS)
    assert 0.0 < meta.threshold < 1.0
    assert meta.decision.min_run_windows >= 1
    assert 1 <= meta.embedding_size <= contract.EMBEDDING_MAX_SIZE
    assert meta.precision in ("float32", "int8")
    assert "event" in meta.validation
    assert meta.head is not None and meta.normalisation["inside_model"] is True


def test_shipped_model_has_contract_tensors(shipped_info: ModelInfo) -> None:
    interpreter = Interpreter(model_path=str(shipped_info.path))
    (window,) = interpreter.get_input_details()
    assert list(window["shape_signature"]) == [-1, *WINDOW_SHAPE]
    full = shipped_info.metadata.precision == "int8-full"
    expected = np.int8 if full else np.float32
    assert window["dtype"] == expected
    signature = interpreter.get_signature_list()[shipped_info.metadata.signature_key]
    assert signature["inputs"] == [contract.INPUT_NAME]
    assert sorted(signature["outputs"]) == sorted(
        [contract.OUTPUT_PROBABILITY, contract.OUTPUT_EMBEDDING]
    )


def test_batch_resize_to_64(shipped_info: ModelInfo) -> None:
    windows = _windows(64)
    batched = CrashModelRunner(shipped_info.path, batch_windows=64).predict(windows)
    assert batched.probability.shape == (64,)
    assert batched.embedding.shape == (64, shipped_info.metadata.embedding_size)
    probability = batched.probability
    assert np.all((probability >= 0.0) & (probability <= 1.0))
    # One window at a time gives the same answers as the batch of 64.
    single = CrashModelRunner(shipped_info.path, batch_windows=1)
    for i in (0, 17, 63):
        one = single.predict(windows[i : i + 1]).probability[0]
        np.testing.assert_allclose(one, probability[i], atol=1e-6)


def test_shipped_siblings_agree(shipped_info: ModelInfo) -> None:
    """The other-precision file beside the default agrees with it."""
    from models.rebuild import load_calibration
    from models.registry import shipped_path

    siblings = [shipped_path(s) for s in ("_int8.tflite", "_float32.tflite")]
    present = [p for p in siblings if p.exists()]
    assert len(present) == 1
    sibling = load_model_info(present[0])
    assert sibling.metadata.precision != shipped_info.metadata.precision
    assert sibling.metadata.head == shipped_info.metadata.head
    windows = load_calibration()
    a = CrashModelRunner(shipped_info.path).predict(windows).probability
    b = CrashModelRunner(sibling.path).predict(windows).probability
    assert np.mean(np.abs(a - b) <= 0.02) >= 0.99


def test_runner_pads_partial_batches(shipped_runner: CrashModelRunner) -> None:
    windows = _windows(150, seed=1)
    whole = shipped_runner.predict(windows)
    assert whole.probability.shape == (150,)
    assert whole.embedding.shape == (150, shipped_runner.embedding_size)
    part = shipped_runner.predict(windows[100:103])
    np.testing.assert_array_equal(part.probability, whole.probability[100:103])
    np.testing.assert_array_equal(part.embedding, whole.embedding[100:103])
    assert shipped_runner.predict(windows[:0]).probability.shape == (0,)
    with pytest.raises(ValueError, match="shape"):
        shipped_runner.predict(windows[:, :100])


def _strip_signatures(source: Path, target: Path) -> None:
    """Write ``source`` without signatures and with anonymous output names."""
    model = schema.ModelT.InitFromPackedBuf(source.read_bytes(), 0)
    model.signatureDefs = []
    graph = model.subgraphs[0]
    for n, index in enumerate(graph.outputs):
        graph.tensors[index].name = f"Identity_{n}".encode()
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    target.write_bytes(bytes(builder.Output()))


def test_runner_finds_outputs_by_shape_without_signature(
    shipped_info: ModelInfo, shipped_runner: CrashModelRunner, tmp_path: Path
) -> None:
    bare = tmp_path / "bare.tflite"
    _strip_signatures(shipped_info.path, bare)
    assert Interpreter(model_path=str(bare)).get_signature_list() == {}
    windows = _windows(70, seed=2)
    by_shape = CrashModelRunner(bare).predict(windows)
    by_signature = shipped_runner.predict(windows)
    np.testing.assert_array_equal(by_shape.probability, by_signature.probability)
    np.testing.assert_array_equal(by_shape.embedding, by_signature.embedding)


def test_tampered_copy_is_refused(shipped_info: ModelInfo, tmp_path: Path) -> None:
    copy = tmp_path / SHIPPED_MODEL_FILE
    shutil.copy(shipped_info.path, copy)
    shutil.copy(shipped_info.metadata_path, metadata_path_for(copy))
    assert load_model_info(copy).sha256 == shipped_info.sha256
    data = bytearray(copy.read_bytes())
    data[len(data) // 2] ^= 0x01
    copy.write_bytes(bytes(data))
    with pytest.raises(ModelIntegrityError, match="SHA-256"):
        load_model_info(copy)


def test_gateway_modules_do_not_import_tensorflow() -> None:
    code = (
        "import sys\n"
        "import models.registry, models.runtime, models.evaluation\n"
        "from models.registry import shipped_model\n"
        "from models.runtime import CrashModelRunner\n"
        "CrashModelRunner.from_info(shipped_model())\n"
        "heavy = [m for m in ('tensorflow', 'keras') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
