"""Run a crash model on the LiteRT interpreter, batched (gateway side).

The exported model has one signature, ``serving_default``, with the input
``imu_window`` [batch, 200, 6] and the outputs ``crash_probability``
[batch, 1] and ``embedding`` [batch, k]. The converter names the output
*tensors* ``StatefulPartitionedCall:0`` / ``:1``, so runtimes must find them
through the signature's output names, not through the tensor names. This
module resolves them in that order of preference:

1. the signature ``serving_default`` (output names are the contract's names);
2. tensor details whose name equals the contract name;
3. the output shapes: ``[-1, 1]`` is the probability, ``[-1, k > 1]`` the
   embedding (contract v1 has exactly these two).

The interpreter is resized once to a fixed batch (default 64) and the last
partial batch is padded with zeros, so tensors are allocated once per model.
Windows are independent, so padding does not change any window's output.

A model's input and outputs are float32 (float and int8-weight models) or
int8 (full-integer models, ``precision`` "int8-full" in its metadata); for
an integer model the runner quantises the float windows with the input tensor's
scale and zero point and dequantises both outputs, so callers always pass and
get float32.

The runtime is ``ai_edge_litert``; ``tflite_runtime`` is tried only when
LiteRT is missing (it fails to load with NumPy 2). Errors:
``ModelFileError`` (the interpreter cannot open the file) and
``ModelContractError`` (tensors do not match contract v1).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from . import contract
from .errors import ModelContractError, ModelFileError
from .metadata import SIGNATURE_KEY
from .registry import ModelInfo

__all__ = ["DEFAULT_BATCH_WINDOWS", "CrashModelRunner", "WindowOutputs"]

_LOGGER = logging.getLogger(__name__)

# 64 windows = 32 s of ride per invoke: large enough to amortise the
# per-invoke overhead, small enough (about 300 kB of input) for a 1 GB gateway.
DEFAULT_BATCH_WINDOWS = 64


@dataclass(frozen=True)
class WindowOutputs:
    """Model outputs for n windows."""

    probability: npt.NDArray[np.float32]  # (n,)
    embedding: npt.NDArray[np.float32]  # (n, k)


def _make_interpreter(model_path: Path, num_threads: int | None) -> Any:
    try:
        from ai_edge_litert import interpreter as litert
    except ImportError:  # pragma: no cover - fallback for old gateways
        from tflite_runtime import interpreter as litert
    try:
        return litert.Interpreter(model_path=str(model_path), num_threads=num_threads)
    except (ValueError, RuntimeError) as exc:
        raise ModelFileError(
            f"{model_path}: interpreter cannot load it: {exc}"
        ) from exc


def _output_indices(interpreter: Any, source: str) -> tuple[int, int]:
    """Return the tensor indices of (crash_probability, embedding)."""
    wanted = (contract.OUTPUT_PROBABILITY, contract.OUTPUT_EMBEDDING)

    signatures = interpreter.get_signature_list()
    if SIGNATURE_KEY in signatures:
        runner = interpreter.get_signature_runner(SIGNATURE_KEY)
        by_signature = runner.get_output_details()
        if all(name in by_signature for name in wanted):
            return by_signature[wanted[0]]["index"], by_signature[wanted[1]]["index"]

    details = interpreter.get_output_details()
    by_name = {d["name"]: d["index"] for d in details}
    if all(name in by_name for name in wanted):
        return by_name[wanted[0]], by_name[wanted[1]]

    probability = [d for d in details if list(d["shape_signature"][1:]) == [1]]
    embedding = [
        d
        for d in details
        if len(d["shape_signature"]) == 2
        and 1 < d["shape_signature"][1] <= contract.EMBEDDING_MAX_SIZE
    ]
    if len(details) == 2 and len(probability) == 1 and len(embedding) == 1:
        _LOGGER.warning(
            "%s: outputs found by shape, not by name (no signature %r)",
            source,
            SIGNATURE_KEY,
        )
        return probability[0]["index"], embedding[0]["index"]
    found = [(d["name"], list(d["shape_signature"])) for d in details]
    raise ModelContractError(
        f"{source}: cannot find outputs {list(wanted)}: signatures "
        f"{sorted(signatures)}, output tensors {found}"
    )


class CrashModelRunner:
    """Batched inference of one crash model over contract v1 windows."""

    def __init__(
        self,
        model_path: Path,
        batch_windows: int = DEFAULT_BATCH_WINDOWS,
        num_threads: int | None = None,
    ) -> None:
        """Open ``model_path`` and allocate tensors for ``batch_windows``.

        Raises:
            ModelFileError: the interpreter cannot load the file.
            ModelContractError: the input or outputs do not match contract v1.
        """
        if batch_windows < 1:
            raise ValueError(f"batch_windows must be >= 1, found {batch_windows}")
        self.model_path = Path(model_path)
        self.batch_windows = batch_windows
        source = str(self.model_path)
        self._interpreter = _make_interpreter(self.model_path, num_threads)

        inputs = self._interpreter.get_input_details()
        expected = [-1, contract.WINDOW_SAMPLES, len(contract.INPUT_CHANNELS)]
        if len(inputs) != 1 or list(inputs[0]["shape_signature"]) != expected:
            found = [(d["name"], list(d["shape_signature"])) for d in inputs]
            raise ModelContractError(
                f"{source}: expected one input of shape {expected}, found {found}"
            )
        self._input_index: int = inputs[0]["index"]
        self._probability_index, self._embedding_index = _output_indices(
            self._interpreter, source
        )
        by_index = {d["index"]: d for d in self._interpreter.get_output_details()}
        self._input_q = _Quantisation.of(inputs[0], source)
        self._probability_q = _Quantisation.of(
            by_index[self._probability_index], source
        )
        self._embedding_q = _Quantisation.of(by_index[self._embedding_index], source)
        #: True when the model takes and gives int8 tensors (full integer).
        self.integer_io = self._input_q.is_int8

        try:
            self._interpreter.resize_tensor_input(
                self._input_index, [batch_windows, *expected[1:]], strict=True
            )
            self._interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            raise ModelContractError(
                f"{source}: cannot resize the batch dimension to {batch_windows}: {exc}"
            ) from exc
        embedding = self._interpreter.get_tensor(self._embedding_index)
        self.embedding_size = int(embedding.shape[1])

    @classmethod
    def from_info(
        cls,
        info: ModelInfo,
        batch_windows: int = DEFAULT_BATCH_WINDOWS,
        num_threads: int | None = None,
    ) -> CrashModelRunner:
        """Open the model of a verified ``ModelInfo``."""
        return cls(info.path, batch_windows, num_threads)

    def predict(self, windows: npt.ArrayLike) -> WindowOutputs:
        """Return probability and embedding of each (200, 6) window.

        ``windows`` is (n, 200, 6) float32, as ``contract.make_windows`` makes.
        """
        batch = np.asarray(windows, dtype=np.float32)
        shape = (contract.WINDOW_SAMPLES, len(contract.INPUT_CHANNELS))
        if batch.ndim != 3 or batch.shape[1:] != shape:
            raise ValueError(
                f"windows must have shape (n, {shape[0]}, {shape[1]}), "
                f"found {batch.shape}"
            )
        n = len(batch)
        probability = np.empty(n, dtype=np.float32)
        embedding = np.empty((n, self.embedding_size), dtype=np.float32)
        chunk = np.zeros((self.batch_windows, *shape), dtype=self._input_q.dtype)
        for start in range(0, n, self.batch_windows):
            stop = min(start + self.batch_windows, n)
            chunk[: stop - start] = self._input_q.quantise(batch[start:stop])
            chunk[stop - start :] = self._input_q.zero_point
            self._interpreter.set_tensor(self._input_index, chunk)
            self._interpreter.invoke()
            out_p = self._interpreter.get_tensor(self._probability_index)
            out_e = self._interpreter.get_tensor(self._embedding_index)
            probability[start:stop] = self._probability_q.dequantise(
                out_p[: stop - start, 0]
            )
            embedding[start:stop] = self._embedding_q.dequantise(out_e[: stop - start])
        return WindowOutputs(probability, embedding)


@dataclass(frozen=True)
class _Quantisation:
    """How one tensor maps to real values: ``real = scale * (q - zero_point)``."""

    dtype: Any
    scale: float
    zero_point: int

    @property
    def is_int8(self) -> bool:
        return bool(self.dtype == np.int8)

    @classmethod
    def of(cls, detail: dict[str, Any], source: str) -> _Quantisation:
        """Return the quantisation of a tensor detail (float32 or int8 only)."""
        dtype = detail["dtype"]
        if dtype == np.float32:
            return cls(np.float32, 1.0, 0)
        scale, zero_point = detail.get("quantization", (0.0, 0))
        if dtype != np.int8 or not scale > 0:
            raise ModelContractError(
                f"{source}: tensor {detail['name']!r}: expected float32, or int8 "
                f"with a scale, found {np.dtype(dtype).name} scale {scale}"
            )
        return cls(np.int8, float(scale), int(zero_point))

    def quantise(self, real: npt.NDArray[np.float32]) -> npt.NDArray[Any]:
        """Return ``real`` in this tensor's type (rounded and saturated)."""
        if not self.is_int8:
            same: npt.NDArray[Any] = real
            return same
        q = np.rint(real / np.float32(self.scale)) + self.zero_point
        out: npt.NDArray[np.int8] = np.clip(q, -128, 127).astype(np.int8)
        return out

    def dequantise(self, values: npt.NDArray[Any]) -> npt.NDArray[np.float32]:
        """Return real values of this tensor's raw output."""
        if not self.is_int8:
            return np.asarray(values, dtype=np.float32)
        shifted = values.astype(np.float32) - np.float32(self.zero_point)
        out: npt.NDArray[np.float32] = shifted * np.float32(self.scale)
        return out
