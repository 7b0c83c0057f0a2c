"""Import archived on-premise files (suit logs, CSV exports) via the pipeline.

``ingest_files`` / ``ingest_file`` are what ``edge-agent ingest`` calls;
``UnitOptions`` carries the unit options; ``CsvSource`` reads one export.
"""

from .columns import FIELDS, ColumnMap, map_columns, parse_overrides
from .csv_source import CsvSource
from .importer import IngestOutcome, ingest_file, ingest_files
from .units import (
    ACCEL_UNITS,
    GYRO_UNITS,
    MAG_UNITS,
    SPEED_UNITS,
    TIME_REFERENCES,
    TIME_UNITS,
    UnitOptions,
)

__all__ = [
    "ACCEL_UNITS",
    "FIELDS",
    "GYRO_UNITS",
    "MAG_UNITS",
    "SPEED_UNITS",
    "TIME_REFERENCES",
    "TIME_UNITS",
    "ColumnMap",
    "CsvSource",
    "IngestOutcome",
    "UnitOptions",
    "ingest_file",
    "ingest_files",
    "map_columns",
    "parse_overrides",
]
