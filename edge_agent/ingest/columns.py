"""Map the columns of a CSV export to the pipeline's fields, with their units.

A header is recognised by its name (case, spaces, dashes and underscores do
not matter) and may carry a unit: as a suffix (``acc_x_mps2``, ``time_ms``)
or in brackets (``Ax [g]``, ``Time (s)``). ``overrides`` (``{FIELD: HEADER}``,
the CLI's ``--column FIELD=HEADER``) win over recognition; FIELD may be a
canonical field name or any recognised spelling of it.

Fields: ``time``, ``acc_x|y|z``, ``gyr_x|y|z`` (required), ``mag_x|y|z``
(all three or none), ``lat``, ``lon`` (both or none), ``alt``, ``speed``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from edge_agent.processing.errors import CsvValueError, MissingColumnError

from .units import normalise_unit

__all__ = [
    "FIELDS",
    "ColumnMap",
    "MappedColumn",
    "field_for",
    "map_columns",
    "parse_overrides",
]

_AXES = ("x", "y", "z")
FIELDS = (
    "time",
    *(f"acc_{a}" for a in _AXES),
    *(f"gyr_{a}" for a in _AXES),
    *(f"mag_{a}" for a in _AXES),
    "lat",
    "lon",
    "alt",
    "speed",
)
REQUIRED_FIELDS = ("time", *(f"acc_{a}" for a in _AXES), *(f"gyr_{a}" for a in _AXES))


def _aliases() -> dict[str, str]:
    names = {
        "time": ["time", "timestamp", "t", "ts", "time_stamp", "elapsed"],
        "lat": ["lat", "latitude"],
        "lon": ["lon", "lng", "long", "longitude"],
        "alt": ["alt", "altitude", "height", "elevation"],
        "speed": ["speed", "velocity", "gps_speed", "ground_speed"],
    }
    for axis in _AXES:
        names[f"acc_{axis}"] = [
            f"a{axis}", f"acc_{axis}", f"accel_{axis}", f"acceleration_{axis}",
            f"acc{axis}", f"accel{axis}", f"accelerometer_{axis}",
        ]  # fmt: skip
        names[f"gyr_{axis}"] = [
            f"g{axis}", f"gyr_{axis}", f"gyro_{axis}", f"gyroscope_{axis}",
            f"gyr{axis}", f"gyro{axis}", f"angular_rate_{axis}",
        ]  # fmt: skip
        names[f"mag_{axis}"] = [
            f"m{axis}", f"mag_{axis}", f"magnetometer_{axis}", f"mag{axis}",
        ]  # fmt: skip
    return {alias: field for field, spellings in names.items() for alias in spellings}


_ALIASES = _aliases()
_BRACKET_UNIT = re.compile(r"^(?P<name>.*?)\s*[\(\[]\s*(?P<unit>[^\)\]]+?)\s*[\)\]]$")


@dataclass(frozen=True)
class MappedColumn:
    """One CSV column used for one field, with the unit its header declares."""

    field: str
    header: str
    index: int
    unit: str | None


@dataclass(frozen=True)
class ColumnMap:
    """The fields found in a CSV header."""

    columns: dict[str, MappedColumn]

    @property
    def has_mag(self) -> bool:
        """Return True when all three magnetometer axes are mapped."""
        return all(f"mag_{a}" in self.columns for a in _AXES)

    @property
    def has_gnss(self) -> bool:
        """Return True when latitude and longitude are mapped."""
        return "lat" in self.columns and "lon" in self.columns


def _squash(text: str) -> str:
    return re.sub(r"[\s\-]+", "_", text.strip().lower()).strip("_")


def field_for(name: str) -> tuple[str, str | None] | None:
    """Return (field, declared unit or None) for a header, or None."""
    text = name.strip().lstrip("\ufeff")
    unit = None
    bracket = _BRACKET_UNIT.match(text)
    if bracket:
        text, unit = bracket.group("name"), normalise_unit(bracket.group("unit"))
        if unit is None:
            return None
    squashed = _squash(text)
    if squashed in _ALIASES:
        return _ALIASES[squashed], unit
    if unit is None:
        # A unit as the last underscore-separated part: acc_x_mps2, time_ms.
        for cut in range(len(squashed) - 1, 0, -1):
            if squashed[cut] != "_":
                continue
            base, suffix = squashed[:cut], squashed[cut + 1 :]
            suffix_unit = normalise_unit(suffix)
            if base in _ALIASES and suffix_unit is not None:
                return _ALIASES[base], suffix_unit
    return None


def _canonical_field(key: str, source: str) -> str:
    squashed = _squash(key)
    if squashed in FIELDS:
        return squashed
    if squashed in _ALIASES:
        return _ALIASES[squashed]
    raise CsvValueError(
        source,
        f"column override '{key}'",
        f"unknown field; expected one of {', '.join(FIELDS)}",
    )


def map_columns(
    headers: Sequence[str], overrides: Mapping[str, str], source: str
) -> ColumnMap:
    """Return which column holds which field.

    Raises:
        CsvValueError: an override names an unknown field, or two columns
            claim one field.
        MissingColumnError: a required field (or an override's header) is
            absent.
    """
    by_header = {h.strip().lstrip("\ufeff"): i for i, h in enumerate(headers)}
    by_lower = {h.lower(): i for h, i in by_header.items()}
    mapped: dict[str, MappedColumn] = {}

    # Overrides first: they win over recognition.
    for key, header in overrides.items():
        field = _canonical_field(key, source)
        index = by_header.get(header.strip(), by_lower.get(header.strip().lower()))
        if index is None:
            raise MissingColumnError(
                source,
                "header",
                f"column override {key}={header}: no column '{header}' in "
                f"{list(by_header)}",
            )
        found = field_for(headers[index])
        mapped[field] = MappedColumn(
            field, headers[index], index, found[1] if found else None
        )

    overridden = set(mapped)
    taken = {c.index for c in mapped.values()}
    for index, header in enumerate(headers):
        found = field_for(header)
        if found is None or index in taken or found[0] in overridden:
            continue
        field, unit = found
        if field in mapped:
            raise CsvValueError(
                source,
                "header",
                f"columns '{mapped[field].header}' and '{header}' both look like "
                f"field '{field}'; choose one with --column {field}=HEADER",
            )
        mapped[field] = MappedColumn(field, header, index, unit)

    missing = [f for f in REQUIRED_FIELDS if f not in mapped]
    if missing:
        raise MissingColumnError(
            source,
            "header",
            f"no column for {', '.join(missing)} among {list(by_header)}; "
            "name it with --column FIELD=HEADER",
        )
    for group in (tuple(f"mag_{a}" for a in _AXES), ("lat", "lon")):
        present = [f for f in group if f in mapped]
        if present and len(present) != len(group):
            absent = [f for f in group if f not in mapped]
            raise MissingColumnError(
                source,
                "header",
                f"found {', '.join(present)} but not {', '.join(absent)}",
            )
    return ColumnMap(mapped)


def parse_overrides(
    specs: Sequence[str], known: Sequence[str] | None = None
) -> dict[str, str]:
    """Parse ``FIELD=HEADER`` strings (the CLI's ``--column``) into a mapping.

    Args:
        specs: the strings as given.
        known: the fields a command accepts (e.g. ``FIELDS``); None: any.

    Raises:
        ValueError: a spec has no ``=``, an empty side, names a field not in
            ``known``, or repeats a field.
    """
    overrides: dict[str, str] = {}
    for spec in specs:
        field, sep, header = spec.partition("=")
        if not sep or not field.strip() or not header.strip():
            raise ValueError(f"--column {spec!r}: expected FIELD=HEADER, e.g. Ax=acc_x")
        if known is not None and field.strip() not in known:
            raise ValueError(
                f"--column {spec!r}: unknown field '{field.strip()}'; fields: "
                f"{', '.join(known)}"
            )
        if field.strip() in overrides:
            raise ValueError(f"--column {spec!r}: field '{field.strip()}' given twice")
        overrides[field.strip()] = header.strip()
    return overrides
