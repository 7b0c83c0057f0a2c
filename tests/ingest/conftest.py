"""Fixtures for import tests: the tiny crash model of the processing tests."""

from __future__ import annotations

from tests.processing.conftest import detector, tiny_model_path

__all__ = ["detector", "tiny_model_path"]
