"""Names of the files and folders inside a custody buffer's root."""

from __future__ import annotations

__all__ = [
    "LOCK_FILE_NAME",
    "LOGS_DIR",
    "OUTPUTS_DIR",
    "QUARANTINE_DIR",
    "RAW_SUFFIX",
    "REASON_FILE",
]

LOGS_DIR = "logs"
OUTPUTS_DIR = "outputs"
QUARANTINE_DIR = "quarantine"
REASON_FILE = "reason.json"
LOCK_FILE_NAME = "custody.lock"
# Suffix of raw logs pulled over BLE; imports keep their own suffix.
RAW_SUFFIX = ".bin"
