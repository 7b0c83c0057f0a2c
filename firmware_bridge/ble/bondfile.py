"""Private JSON files for bonds: atomic writes with mode 0600, checked reads.

Shared by the emulated devices' key stores and the gateway's bond store; it
imports nothing from bumble, so a gateway without the emulation extra can
use it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

__all__ = ["BondFileError", "read_json_object", "write_private_json"]


class BondFileError(ValueError):
    """Report a bond file that cannot be read as this module wrote it."""


def write_private_json(path: Path, document: dict[str, Any]) -> None:
    """Write ``document`` to ``path`` atomically, readable by the owner only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        os.fchmod(handle.fileno(), 0o600)  # a leftover temporary keeps its mode
        handle.write(json.dumps(document, indent=2, sort_keys=True).encode())
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def read_json_object(path: Path, schema: str) -> dict[str, Any] | None:
    """Return the JSON object in ``path`` (None if absent); check its schema."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        raise BondFileError(
            f"bond file {path}: not JSON at line {error.lineno} column "
            f"{error.colno}: {error.msg}"
        ) from None
    if not isinstance(document, dict) or document.get("schema") != schema:
        found = document.get("schema") if isinstance(document, dict) else document
        raise BondFileError(
            f"bond file {path}: field 'schema': expected {schema!r}, found {found!r}"
        )
    return document
