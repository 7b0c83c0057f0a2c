"""Versioned schema migrations and the rules for applying them.

Each backend has an ordered list of :class:`Migration` (``schema.py``).
``migrate()`` creates ``schema_migrations`` if needed, then in one
transaction, under a lock that serialises concurrent starters, applies the
migrations whose version is not recorded yet and records each one with its
name and time. A failed statement rolls the whole batch back. Migrations
are append-only: a released one is never edited, a change is a new version.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from .errors import CatalogSchemaError

__all__ = ["Migration", "pending_migrations"]


@dataclass(frozen=True)
class Migration:
    """One schema step: a version number, a name and its DDL statements."""

    version: int
    name: str
    statements: tuple[str, ...]


def pending_migrations(
    applied: Mapping[int, str], migrations: Sequence[Migration], where: str
) -> list[Migration]:
    """Return the migrations not yet applied, in version order.

    ``applied`` maps recorded versions to their names; ``where`` names the
    database in error messages.

    Raises:
        CatalogSchemaError: the list is not strictly increasing, a recorded
            version has another name than this software's (a different
            schema history), or the database has versions this software
            does not know (it is newer than the code).
    """
    versions = [migration.version for migration in migrations]
    if versions != sorted(set(versions)) or (versions and versions[0] < 1):
        raise CatalogSchemaError(
            f"{where}: migration versions {versions} must be increasing from 1"
        )
    known = {migration.version: migration for migration in migrations}
    unknown = sorted(set(applied) - set(known))
    if unknown:
        raise CatalogSchemaError(
            f"{where}: schema versions {unknown} are newer than this software "
            f"(knows up to {max(known, default=0)}); upgrade cloud-coordinator"
        )
    for version, name in applied.items():
        if known[version].name != name:
            raise CatalogSchemaError(
                f"{where}: schema version {version} is {name!r} in the database "
                f"but {known[version].name!r} here; this database has another "
                "schema history"
            )
    return [migration for migration in migrations if migration.version not in applied]
