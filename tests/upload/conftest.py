"""Fixtures for the upload tests: the SeaweedFS server and file helpers."""

from __future__ import annotations

from tests.support.seaweed import seaweed_s3

__all__ = ["seaweed_s3"]
