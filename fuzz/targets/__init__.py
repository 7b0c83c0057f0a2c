"""Fuzz targets: one module per parser boundary, loaded by name.

Every target module provides::

    MAX_LEN: int                    libFuzzer -max_len for the target
    DICTIONARY: tuple[bytes, ...]   tokens for libFuzzer's -dict
    one_input(data: bytes) -> None  the harness body (raises on a finding)
    seeds() -> dict[str, bytes]     valid inputs from the project's writers

Modules are imported lazily so that ``fuzz.atheris_main`` can import a target
inside ``atheris.instrument_imports()`` and have the project instrumented.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Protocol, cast

__all__ = ["TARGET_NAMES", "FuzzTarget", "load_target"]

TARGET_NAMES = ("logformat", "ble_protocol", "suitlog", "pipeline")


class FuzzTarget(Protocol):
    """What ``fuzz.run`` and the smoke tests need from a target module."""

    MAX_LEN: int
    DICTIONARY: tuple[bytes, ...]
    one_input: Callable[[bytes], None]
    seeds: Callable[[], dict[str, bytes]]


def load_target(name: str) -> FuzzTarget:
    """Import and return the target module called ``name``.

    Raises:
        ValueError: ``name`` is not one of ``TARGET_NAMES``.
    """
    if name not in TARGET_NAMES:
        raise ValueError(f"unknown fuzz target {name!r}; one of {TARGET_NAMES}")
    return cast(FuzzTarget, importlib.import_module(f"{__name__}.{name}"))
