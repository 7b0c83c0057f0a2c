"""Fixtures for the custody buffer tests: fresh buffers, keys, a suit log."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from edge_agent.custody import CustodyBuffer, generate_key_file
from firmware_bridge.synth import RideSpec, write_ride


@pytest.fixture
def buffer_root(tmp_path: Path) -> Path:
    return tmp_path / "custody"


@pytest.fixture
def buffer(buffer_root: Path) -> Iterator[CustodyBuffer]:
    with CustodyBuffer.open(buffer_root) as opened:
        yield opened


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    return generate_key_file(tmp_path / "custody.key")


@pytest.fixture
def sealed_buffer(buffer_root: Path, key_file: Path) -> Iterator[CustodyBuffer]:
    with CustodyBuffer.open(buffer_root, key_file=key_file) as opened:
        yield opened


@pytest.fixture(scope="session")
def suit_log_bytes(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """Return a real suit log (about 0.6 MB, 80 s at 200 Hz, suit SUIT-0001)."""
    path = tmp_path_factory.mktemp("ride") / "ride.slog"
    spec = RideSpec(
        seed=5,
        scenario="city",
        riding_s=60.0,
        sample_rate_hz=200.0,
        walk_before_s=5.0,
        walk_after_s=5.0,
        suit_serial="SUIT-0001",
    )
    write_ride(spec, path)
    return path.read_bytes()
