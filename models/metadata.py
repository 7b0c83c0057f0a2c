"""Metadata that travels beside every crash model (``<model>.json``).

The JSON (schema ``crash-model-metadata/1``) holds what the gateway needs to
run a model and trust it: name, version, contract version, the SHA-256 of the
``.tflite`` bytes, the input spec, the output names and shapes, the signature
to call, and the decision rule (probability threshold and how many windows in
a row make a crash event). It also records, for people, how the model was
made and how it scored on validation rides; those sections are free-form
dictionaries so they can grow without a schema change.

Parsing is strict on the fields the runtime relies on: a missing or mistyped
field raises ``ModelMetadataError`` naming the file and the field.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from . import contract
from .errors import ModelFileError, ModelMetadataError

__all__ = [
    "METADATA_SCHEMA",
    "PRECISIONS",
    "PRECISION_FLOAT32",
    "PRECISION_INT8",
    "PRECISION_INT8_FULL",
    "SIGNATURE_KEY",
    "DecisionRule",
    "InputSpec",
    "ModelMetadata",
    "load_metadata",
    "save_metadata",
]

METADATA_SCHEMA = "crash-model-metadata/1"
# The one signature the exporter writes; runtimes call it by this key.
SIGNATURE_KEY = "serving_default"
PRECISION_FLOAT32 = "float32"
# int8 weights, float32 activations, input and outputs (dynamic-range
# quantisation): a quarter of the weight bytes, outputs within 0.005 of float.
PRECISION_INT8 = "int8"
# Full integer: int8 weights and activations, int8 input and outputs with
# per-tensor scale and zero point, calibrated on training windows; the runtime
# quantises and dequantises itself. For this network one input scale for
# 16 g and 35 rad/s leaves 0.27 units of resolution, and it fails the
# agreement check (see docs/model-card.md); kept for networks that suit it.
PRECISION_INT8_FULL = "int8-full"
PRECISIONS = (PRECISION_FLOAT32, PRECISION_INT8, PRECISION_INT8_FULL)


@dataclass(frozen=True)
class InputSpec:
    """What the model's one input tensor holds."""

    name: str
    shape: list[int]
    dtype: str
    rate_hz: float
    window_s: float
    hop_s: float
    channels: list[str]

    @classmethod
    def contract_v1(cls) -> InputSpec:
        """Return the input spec of model contract v1 (batch dimension -1)."""
        return cls(
            name=contract.INPUT_NAME,
            shape=[-1, contract.WINDOW_SAMPLES, len(contract.INPUT_CHANNELS)],
            dtype="float32",
            rate_hz=contract.MODEL_RATE_HZ,
            window_s=contract.WINDOW_S,
            hop_s=contract.WINDOW_HOP_S,
            channels=list(contract.INPUT_CHANNELS),
        )


@dataclass(frozen=True)
class DecisionRule:
    """How window probabilities become a crash event.

    A crash event is a run of at least ``min_run_windows`` consecutive windows
    whose probability is at or above ``threshold``.
    """

    threshold: float
    min_run_windows: int


@dataclass(frozen=True)
class ModelMetadata:
    """Everything the JSON beside a model says about it."""

    name: str
    version: str
    contract_version: int
    sha256: str
    size_bytes: int
    signature_key: str
    input: InputSpec
    outputs: dict[str, list[int]]
    decision: DecisionRule
    created_utc: str
    validation: dict[str, Any] = field(default_factory=dict)
    training: dict[str, Any] = field(default_factory=dict)
    software: dict[str, str] = field(default_factory=dict)
    # Optional sections (older files lack them): the output layer's weights
    # (``head.kernel``, ``head.bias``, read by ``models.head``), the numeric
    # precision of the model's tensors ("float32" or "int8"), the per-channel
    # normalisation inside the model, and held-out evaluation figures.
    head: dict[str, Any] | None = None
    precision: str = PRECISION_FLOAT32
    normalisation: dict[str, Any] = field(default_factory=dict)
    evaluation: dict[str, Any] = field(default_factory=dict)
    schema: str = METADATA_SCHEMA

    @property
    def threshold(self) -> float:
        """Return the decision threshold on ``crash_probability``."""
        return self.decision.threshold

    @property
    def embedding_size(self) -> int:
        """Return the length of the ``embedding`` vector."""
        return self.outputs[contract.OUTPUT_EMBEDDING][-1]

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON-ready form (schema first)."""
        data = asdict(self)
        schema = data.pop("schema")
        if data["head"] is None:
            del data["head"]
        return {"schema": schema, **data}

    @classmethod
    def from_dict(cls, data: object, source: str) -> ModelMetadata:
        """Build metadata from parsed JSON, naming ``source`` in every error."""
        top = _Fields(data, source, "")
        schema = top.text("schema")
        if schema != METADATA_SCHEMA:
            raise ModelMetadataError(
                f"{source}: field 'schema': expected {METADATA_SCHEMA!r}, "
                f"found {schema!r}"
            )
        spec = top.sub("input")
        decision = top.sub("decision")
        outputs = top.mapping("outputs")
        shapes: dict[str, list[int]] = {}
        for name in (contract.OUTPUT_PROBABILITY, contract.OUTPUT_EMBEDDING):
            shape = outputs.get(name)
            if not isinstance(shape, list) or not all(
                isinstance(d, int) for d in shape
            ):
                raise ModelMetadataError(
                    f"{source}: field 'outputs.{name}': expected a list of "
                    f"integers, found {shape!r}"
                )
            shapes[name] = shape
        return cls(
            name=top.text("name"),
            version=top.text("version"),
            contract_version=top.integer("contract_version"),
            sha256=top.text("sha256"),
            size_bytes=top.integer("size_bytes"),
            signature_key=top.text("signature_key"),
            input=InputSpec(
                name=spec.text("name"),
                shape=spec.integers("shape"),
                dtype=spec.text("dtype"),
                rate_hz=spec.number("rate_hz"),
                window_s=spec.number("window_s"),
                hop_s=spec.number("hop_s"),
                channels=spec.texts("channels"),
            ),
            outputs=shapes,
            decision=_decision(decision, source),
            created_utc=top.text("created_utc"),
            validation=top.mapping("validation"),
            training=top.mapping("training"),
            software={str(k): str(v) for k, v in top.mapping("software").items()},
            head=top.mapping("head") if top.has("head") else None,
            precision=_precision(top, source),
            normalisation=top.mapping("normalisation")
            if top.has("normalisation")
            else {},
            evaluation=top.mapping("evaluation") if top.has("evaluation") else {},
            schema=schema,
        )


def _decision(fields: _Fields, source: str) -> DecisionRule:
    """Return the decision rule, refusing one that could never (or always) fire."""
    threshold = fields.number("threshold")
    min_run = fields.integer("min_run_windows")
    if not 0.0 < threshold < 1.0:  # NaN fails too
        raise ModelMetadataError(
            f"{source}: field 'decision.threshold': expected a probability "
            f"strictly between 0 and 1, found {threshold!r}"
        )
    if min_run < 1:
        raise ModelMetadataError(
            f"{source}: field 'decision.min_run_windows': expected 1 or more, "
            f"found {min_run}"
        )
    return DecisionRule(threshold, min_run)


def _precision(top: _Fields, source: str) -> str:
    """Return the optional ``precision`` field, checked."""
    if not top.has("precision"):
        return PRECISION_FLOAT32
    precision = top.text("precision")
    if precision not in PRECISIONS:
        raise ModelMetadataError(
            f"{source}: field 'precision': expected one of {PRECISIONS}, "
            f"found {precision!r}"
        )
    return precision


class _Fields:
    """Typed access to one JSON object, with errors naming file and field."""

    def __init__(self, data: object, source: str, prefix: str) -> None:
        if not isinstance(data, dict):
            where = prefix.rstrip(".") or "top level"
            raise ModelMetadataError(
                f"{source}: {where}: expected an object, found {type(data).__name__}"
            )
        self._data = data
        self._source = source
        self._prefix = prefix

    def _get(self, key: str, kinds: tuple[type, ...], expected: str) -> Any:
        if key not in self._data:
            raise ModelMetadataError(
                f"{self._source}: field '{self._prefix}{key}' is missing"
            )
        value = self._data[key]
        if isinstance(value, bool) or not isinstance(value, kinds):
            raise ModelMetadataError(
                f"{self._source}: field '{self._prefix}{key}': expected {expected}, "
                f"found {value!r}"
            )
        return value

    def has(self, key: str) -> bool:
        return key in self._data

    def text(self, key: str) -> str:
        value: str = self._get(key, (str,), "a string")
        return value

    def integer(self, key: str) -> int:
        value: int = self._get(key, (int,), "an integer")
        return value

    def number(self, key: str) -> float:
        return float(self._get(key, (int, float), "a number"))

    def mapping(self, key: str) -> dict[str, Any]:
        value: dict[str, Any] = self._get(key, (dict,), "an object")
        return value

    def sub(self, key: str) -> _Fields:
        return _Fields(self.mapping(key), self._source, f"{self._prefix}{key}.")

    def integers(self, key: str) -> list[int]:
        value = self._get(key, (list,), "a list of integers")
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
            raise ModelMetadataError(
                f"{self._source}: field '{self._prefix}{key}': expected a list of "
                f"integers, found {value!r}"
            )
        return list(value)

    def texts(self, key: str) -> list[str]:
        value = self._get(key, (list,), "a list of strings")
        if not all(isinstance(v, str) for v in value):
            raise ModelMetadataError(
                f"{self._source}: field '{self._prefix}{key}': expected a list of "
                f"strings, found {value!r}"
            )
        return list(value)


def load_metadata(path: Path) -> ModelMetadata:
    """Read and validate a metadata JSON file.

    Raises:
        ModelFileError: the file cannot be read.
        ModelMetadataError: it is not valid JSON or a field is missing/mistyped.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ModelFileError(f"{path}: cannot read model metadata: {exc}") from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ModelMetadataError(
            f"{path}: not valid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
        ) from exc
    return ModelMetadata.from_dict(data, str(path))


def save_metadata(metadata: ModelMetadata, path: Path) -> None:
    """Write metadata as indented JSON (stable key order, newline at the end)."""
    text = json.dumps(metadata.to_dict(), indent=2) + "\n"
    path.write_text(text, encoding="utf-8")
