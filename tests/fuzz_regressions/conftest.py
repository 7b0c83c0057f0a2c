"""Fixtures of the fuzz smoke and regression tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from fuzz.targets._common import strict_logging


@pytest.fixture(autouse=True)
def _strict_logging() -> Iterator[None]:
    """Format every log call as the fuzzer does, so a bad one fails the test."""
    with strict_logging():
        yield
