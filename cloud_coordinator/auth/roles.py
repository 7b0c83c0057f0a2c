"""Roles and the authenticated caller.

* ``rider`` sees their own data only (the token's subject is the rider id);
* ``technician`` sees the data of the professional riders assigned to them
  (the subject is the technician id);
* ``rnd`` reads everything;
* ``admin`` reads everything and manages riders.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import StrEnum

__all__ = ["Principal", "Role"]


class Role(StrEnum):
    """What a token's holder may do."""

    RIDER = "rider"
    TECHNICIAN = "technician"
    RND = "rnd"
    ADMIN = "admin"

    @property
    def reads_everything(self) -> bool:
        """Return whether the role reads every rider's data."""
        return self in (Role.RND, Role.ADMIN)


@dataclass(frozen=True)
class Principal:
    """Who made a request, from a verified token."""

    subject: str
    role: Role
    token_id: str | None
    expires_at: dt.datetime
