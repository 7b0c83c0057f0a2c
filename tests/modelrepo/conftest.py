"""Fixtures of the TUF tests: validation rides and a fresh repository per test."""

from __future__ import annotations

from pathlib import Path

import pytest
from modelrepo_env import RepoWorld, make_world

from cloud_coordinator.modelrepo import ValidationSet
from models.dataset import split_seeds
from tests.support.postgres import postgres_server
from tests.support.seaweed import seaweed_s3

__all__ = ["postgres_server", "seaweed_s3"]

# Six rides (three with a crash): enough for the gate and reference
# crashes, quick to synthesise (about a second).
VALIDATION_RIDES = 6


@pytest.fixture(scope="session")
def validation() -> ValidationSet:
    _, seeds = split_seeds(777, 1, VALIDATION_RIDES)
    return ValidationSet.synthesise(seeds)


@pytest.fixture
def world(tmp_path: Path, validation: ValidationSet) -> RepoWorld:
    return make_world(tmp_path, validation)
