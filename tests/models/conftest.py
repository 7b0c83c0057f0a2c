"""Fixtures for the crash-model tests: the shipped model, opened once."""

from __future__ import annotations

import pytest

from models.registry import ModelInfo, shipped_model
from models.runtime import CrashModelRunner


@pytest.fixture(scope="session")
def shipped_info() -> ModelInfo:
    return shipped_model()


@pytest.fixture(scope="session")
def shipped_runner(shipped_info: ModelInfo) -> CrashModelRunner:
    return CrashModelRunner.from_info(shipped_info)
