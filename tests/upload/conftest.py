"""Fixtures for the upload tests: session-wide SeaweedFS and Azurite servers."""

from __future__ import annotations

import sys
from pathlib import Path

try:
    from tests.support.azurite import azurite_blob
    from tests.support.seaweed import seaweed_s3
except ModuleNotFoundError:
    # Plain `pytest` does not put the project root on sys.path unless the
    # pytest configuration says `pythonpath = ["."]`; add it for this import.
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from tests.support.azurite import azurite_blob
    from tests.support.seaweed import seaweed_s3

__all__ = ["azurite_blob", "seaweed_s3"]
