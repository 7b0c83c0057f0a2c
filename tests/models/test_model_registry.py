"""Model metadata parsing and the registry's integrity checks."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from models import contract
from models.errors import (
    ModelContractError,
    ModelFileError,
    ModelIntegrityError,
    ModelMetadataError,
)
from models.metadata import (
    DecisionRule,
    InputSpec,
    ModelMetadata,
    load_metadata,
    save_metadata,
)
from models.registry import file_sha256, load_model_info, metadata_path_for


def _write_model(folder: Path, payload: bytes = b"not really a flatbuffer") -> Path:
    model_path = folder / "crash_test.tflite"
    model_path.write_bytes(payload)
    metadata = ModelMetadata(
        name="crash-detector",
        version="0.0.1",
        contract_version=contract.CONTRACT_VERSION,
        sha256=file_sha256(model_path),
        size_bytes=len(payload),
        signature_key="serving_default",
        input=InputSpec.contract_v1(),
        outputs={"crash_probability": [-1, 1], "embedding": [-1, 32]},
        decision=DecisionRule(threshold=0.6, min_run_windows=2),
        created_utc="2025-01-01T00:00:00+00:00",
        validation={"window": {"auc": 0.99}},
        training={"config": {"seed": 7}},
        software={"python": "3.11"},
    )
    save_metadata(metadata, metadata_path_for(model_path))
    return model_path


def test_metadata_round_trip(tmp_path: Path) -> None:
    model_path = _write_model(tmp_path)
    info = load_model_info(model_path)
    assert info.metadata.threshold == 0.6
    assert info.metadata.decision.min_run_windows == 2
    assert info.metadata.embedding_size == 32
    assert info.metadata.input.shape == [-1, 200, 6]
    assert info.sha256 == file_sha256(model_path)
    assert load_metadata(info.metadata_path) == info.metadata


def test_tampered_model_is_refused(tmp_path: Path) -> None:
    model_path = _write_model(tmp_path)
    model_path.write_bytes(model_path.read_bytes() + b"\0")
    with pytest.raises(ModelIntegrityError, match="SHA-256") as caught:
        load_model_info(model_path)
    assert str(model_path) in str(caught.value)


def test_missing_model_file_is_named(tmp_path: Path) -> None:
    model_path = _write_model(tmp_path)
    model_path.unlink()
    with pytest.raises(ModelFileError, match=str(model_path)):
        load_model_info(model_path)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d.pop("sha256"), "field 'sha256' is missing"),
        (lambda d: d["decision"].update(threshold="high"), "decision.threshold"),
        (lambda d: d["decision"].update(threshold=float("nan")), "between 0 and 1"),
        (lambda d: d["decision"].update(threshold=2.0), "between 0 and 1"),
        (lambda d: d["decision"].update(threshold=0), "between 0 and 1"),
        (lambda d: d["decision"].update(min_run_windows=0), "1 or more"),
        (lambda d: d["input"].update(shape=[-1, "200", 6]), "input.shape"),
        (lambda d: d.update(schema="other/1"), "field 'schema'"),
        (lambda d: d["outputs"].pop("embedding"), "outputs.embedding"),
    ],
)
def test_malformed_metadata_names_the_field(
    tmp_path: Path, edit: object, message: str
) -> None:
    model_path = _write_model(tmp_path)
    json_path = metadata_path_for(model_path)
    data = json.loads(json_path.read_text())
    edit(data)  # type: ignore[operator]
    json_path.write_text(json.dumps(data))
    with pytest.raises(ModelMetadataError, match=message) as caught:
        load_model_info(model_path)
    assert str(json_path) in str(caught.value)


def test_metadata_that_is_not_json(tmp_path: Path) -> None:
    model_path = _write_model(tmp_path)
    metadata_path_for(model_path).write_text("{ nope")
    with pytest.raises(ModelMetadataError, match="line 1"):
        load_model_info(model_path)


def test_other_contract_version_is_refused(tmp_path: Path) -> None:
    model_path = _write_model(tmp_path)
    metadata = load_metadata(metadata_path_for(model_path))
    save_metadata(replace(metadata, contract_version=2), metadata_path_for(model_path))
    with pytest.raises(ModelContractError, match="contract_version"):
        load_model_info(model_path)
