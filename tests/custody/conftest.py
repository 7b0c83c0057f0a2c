"""Fixtures for the custody buffer tests: a fresh buffer in a temp folder."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from edge_agent.custody import CustodyBuffer


@pytest.fixture
def buffer_root(tmp_path: Path) -> Path:
    return tmp_path / "custody"


@pytest.fixture
def buffer(buffer_root: Path) -> Iterator[CustodyBuffer]:
    with CustodyBuffer.open(buffer_root) as opened:
        yield opened
