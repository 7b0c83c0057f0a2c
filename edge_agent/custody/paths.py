"""Names of the files and folders inside a custody buffer's root."""

from __future__ import annotations

__all__ = [
    "ANALYTICS_OUTPUT",
    "KEEP_ON_OUTPUT_RESET",
    "LOCK_FILE_NAME",
    "LOGS_DIR",
    "OUTPUTS_DIR",
    "QUARANTINE_DIR",
    "RAW_CSV_OUTPUT",
    "RAW_SUFFIX",
    "REASON_FILE",
    "WORK_DIR",
]

LOGS_DIR = "logs"
OUTPUTS_DIR = "outputs"
QUARANTINE_DIR = "quarantine"
# Default place of plaintext working copies (see workspace.py).
WORK_DIR = "work"
REASON_FILE = "reason.json"
LOCK_FILE_NAME = "custody.lock"
# Suffix of raw logs pulled over BLE; imports keep their own suffix.
RAW_SUFFIX = ".bin"
# Output names the agent gives mark_processed (edge_agent.upload.plan uses the
# same), needed here to re-derive a processed log when the index is rebuilt.
RAW_CSV_OUTPUT = "raw_csv"
ANALYTICS_OUTPUT = "analytics"
# Files in outputs/<log_id>/ that are inputs of processing, not its outputs:
# the unit options of an imported CSV (edge_agent.service.steps writes them).
# Removing stale outputs keeps them, so a restart processes with them.
KEEP_ON_OUTPUT_RESET = frozenset({"import-options.json"})
