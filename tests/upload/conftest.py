"""Fixtures for the upload tests: the session-wide SeaweedFS server."""

from __future__ import annotations

import sys
from pathlib import Path

try:
    from tests.support.seaweed import seaweed_s3
except ModuleNotFoundError:
    # Plain `pytest` does not put the project root on sys.path unless the
    # pytest configuration says `pythonpath = ["."]`; add it for this import.
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from tests.support.seaweed import seaweed_s3

__all__ = ["seaweed_s3"]
