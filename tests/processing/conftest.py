"""Fixtures for processing tests: a tiny TFLite crash model, output folders."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge_agent.processing import CrashDetector, ProcessOptions
from tests.processing.tiny_model import build_tiny_model


@pytest.fixture(scope="session")
def tiny_model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Return a tiny contract-v1 model (flags windows peaking above 5 g)."""
    return build_tiny_model(tmp_path_factory.mktemp("model") / "tiny.tflite")


@pytest.fixture(scope="session")
def detector(tiny_model_path: Path) -> CrashDetector:
    """Return the tiny model loaded through the gateway's runtime."""
    return CrashDetector.load(tiny_model_path)


@pytest.fixture
def fast_options() -> ProcessOptions:
    """Return options for tests: no fsync, small chunks."""
    return ProcessOptions(chunk_s=5.0, fsync=False)
