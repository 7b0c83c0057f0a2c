"""Riders' data-protection rights: export all their data, erase it.

:func:`plan_export` and :func:`iter_export` stream a tar of every object
and catalog row of a rider; :func:`erase_rider` deletes them (the audit
log keeps a record of each deletion). The API serves both to riders and
admins; ``cloud-coordinator privacy export|erase`` to operators.
"""

from .erase import ErasureReport, erase_rider
from .export import EXPORT_SCHEMA, ExportPlan, iter_export, plan_export, write_export

__all__ = [
    "EXPORT_SCHEMA",
    "ErasureReport",
    "ExportPlan",
    "erase_rider",
    "iter_export",
    "plan_export",
    "write_export",
]
