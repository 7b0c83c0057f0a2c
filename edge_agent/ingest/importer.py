"""Import archived files (suit logs or CSV exports) through the pipeline.

``ingest_file`` takes one file: a suit log (recognised by its magic, whatever
its name) goes through ``process_log``; anything else is read as a CSV export
with ``CsvSource`` and goes through ``process_stream``. ``ingest_files`` does
the same for many files and keeps going after a bad one, reporting each
outcome, so one corrupt export does not stop an archive import.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from edge_agent.processing import (
    CrashDetector,
    ProcessingError,
    ProcessOptions,
    ProcessResult,
    is_suit_log,
    process_log,
    process_stream,
)

from .csv_source import CsvSource
from .units import UnitOptions

__all__ = ["IngestOutcome", "ingest_file", "ingest_files"]

_LOGGER = logging.getLogger(__name__)


@dataclass(frozen=True)
class IngestOutcome:
    """What happened to one file: its result, or the error that stopped it."""

    path: Path
    result: ProcessResult | None
    error: ProcessingError | None

    @property
    def ok(self) -> bool:
        """Return True when the file was processed."""
        return self.result is not None


# Suit logs are recognised by their magic; a file that does not start with it
# but is binary (or named like a suit log) is a damaged suit log, and the
# decoder's error (wrong magic at byte 0) says more than a CSV parse error.
_SUIT_LOG_SUFFIXES = frozenset({".slog", ".bin"})
_SNIFF_BYTES = 4096


def _looks_binary(path: Path) -> bool:
    if path.suffix.lower() in _SUIT_LOG_SUFFIXES:
        return True
    try:
        with open(path, "rb") as stream:
            return b"\0" in stream.read(_SNIFF_BYTES)
    except OSError:
        return False


def ingest_file(
    path: Path,
    rider_id: str,
    suit_id: str,
    out_dir: Path,
    model: CrashDetector | None,
    *,
    units: UnitOptions | None = None,
    columns: Mapping[str, str] | None = None,
    options: ProcessOptions | None = None,
    log_id: str | None = None,
) -> ProcessResult:
    """Process one archived file into ``out_dir`` (CSV and analytics JSON).

    Args:
        path: a suit log (by magic) or a CSV export.
        rider_id, suit_id: identities written into the analytics.
        out_dir: output folder.
        model: the crash detector, or None.
        units: units of CSV columns whose header does not declare them.
        columns: ``{FIELD: HEADER}`` overrides of column recognition.
        options: processing options (chunk size, gzip level, threads).
        log_id: id of the output; default: the suit log's id, or for a CSV
            the first 32 hex digits of the file's SHA-256 (stable on retry).

    Raises:
        BadInputError: (subclasses) the file is corrupt, a column or unit is
            missing, or nothing valid remains; names the file and place.
        ProcessingEnvironmentError: reading, the model or writing failed.
    """
    path = Path(path)
    if is_suit_log(path) or _looks_binary(path):
        return process_log(
            path, rider_id, suit_id, out_dir, model, options=options, log_id=log_id
        )
    source = CsvSource(path, units or UnitOptions(), columns, log_id)
    return process_stream(
        source.info,
        source.chunks(),
        rider_id=rider_id,
        suit_id=suit_id,
        out_dir=out_dir,
        model=model,
        options=options,
    )


def ingest_files(
    paths: Sequence[Path],
    rider_id: str,
    suit_id: str,
    out_dir: Path,
    model: CrashDetector | None,
    *,
    units: UnitOptions | None = None,
    columns: Mapping[str, str] | None = None,
    options: ProcessOptions | None = None,
) -> list[IngestOutcome]:
    """Process several files; a file that fails is reported, not raised.

    Arguments as for ``ingest_file``. Only ``ProcessingError`` is caught:
    anything else is a bug and propagates.
    """
    outcomes = []
    for number, path in enumerate(paths, start=1):
        try:
            result = ingest_file(
                Path(path),
                rider_id,
                suit_id,
                out_dir,
                model,
                units=units,
                columns=columns,
                options=options,
            )
        except ProcessingError as exc:
            _LOGGER.error(
                "%s: file %d/%d not imported: %s", path, number, len(paths), exc
            )
            outcomes.append(IngestOutcome(Path(path), None, exc))
            continue
        _LOGGER.info(
            "%s: file %d/%d imported as %s", path, number, len(paths), result.log_id
        )
        outcomes.append(IngestOutcome(Path(path), result, None))
    return outcomes
