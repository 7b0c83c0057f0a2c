"""Fuzz target ``logformat``: whole-file decode with ``LogReader.blocks()``.

Contract checked on every input (as given and with its CRCs repaired):

* only ``LogFormatError`` subclasses escape the decoder;
* no read request exceeds one maximal block (payload + CRC), so a length
  field cannot make a real file read allocate more than that;
* a raised error points inside the data (``0 <= offset <= len(data)``) and
  its message names the source;
* a decoded block's records lie within the data and match the header's
  record layout.
"""

from __future__ import annotations

import contextlib

import numpy as np

from firmware_bridge.logformat import (
    EVENT_DTYPE,
    GNSS_DTYPE,
    BlockType,
    LogFormatError,
    LogReader,
    imu_dtype,
)
from firmware_bridge.logformat.records import CRC_SIZE, MAX_BLOCK_PAYLOAD_BYTES

from ._common import BoundedReadStream, ContractViolation
from ._logs import LOG_DICTIONARY, log_seeds, repair_crcs

__all__ = ["DICTIONARY", "MAX_LEN", "decode_all", "one_input", "seeds"]

# 64 KiB holds a header and a few hundred blocks: every check the decoder
# makes is reachable, and libFuzzer stays at thousands of runs a second.
MAX_LEN = 64 * 1024
# The largest read a valid log needs: one maximal block payload and its CRC
# (the block header and file header are smaller).
MAX_READ_BYTES = MAX_BLOCK_PAYLOAD_BYTES + CRC_SIZE
DICTIONARY = LOG_DICTIONARY
_SOURCE = "<fuzz>"


def decode_all(data: bytes) -> int:
    """Decode ``data`` as a log; return the record count or raise its error.

    Raises:
        LogFormatError: the decoder refused the data (allowed).
        ContractViolation: the decoder broke a contract rule.
    """
    stream = BoundedReadStream(data, MAX_READ_BYTES)
    try:
        reader = LogReader(stream, source=_SOURCE)
        layouts: dict[BlockType, np.dtype[np.void]] = {
            BlockType.IMU: imu_dtype(reader.header.channels),
            BlockType.EVENT: EVENT_DTYPE,
            BlockType.GNSS: GNSS_DTYPE,
        }
        records = 0
        for block in reader.blocks():
            if block.records.nbytes > len(data):
                raise ContractViolation(
                    f"block at byte {block.offset} holds {block.records.nbytes} "
                    f"bytes of records, more than the {len(data)}-byte input"
                )
            if block.records.dtype != layouts[block.kind]:
                raise ContractViolation(
                    f"block at byte {block.offset}: records of {block.records.dtype}"
                )
            records += len(block.records)
    except LogFormatError as exc:
        if not 0 <= exc.offset <= len(data) or _SOURCE not in str(exc):
            raise ContractViolation(
                f"error points outside a {len(data)}-byte input: {exc}"
            ) from exc
        raise
    return records


def one_input(data: bytes) -> None:
    """Decode ``data`` as given and with repaired CRCs; allow LogFormatError."""
    for candidate in _variants(data):
        with contextlib.suppress(LogFormatError):
            decode_all(candidate)


def _variants(data: bytes) -> tuple[bytes, ...]:
    repaired = repair_crcs(data)
    return (data,) if repaired == data else (data, repaired)


def seeds() -> dict[str, bytes]:
    """Return valid logs written by ``LogWriter``."""
    return log_seeds()
