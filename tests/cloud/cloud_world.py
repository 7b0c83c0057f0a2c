"""A small world of riders and stored logs, shared by the API tests.

Riders: ``r1`` and ``r2`` private; ``p1`` (technician ``t1``) and ``p2``
(technician ``t2``) professional; ``q1`` private but with ``t1`` named as
technician (a technician sees professional riders only).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from cloud_api_env import ApiEnv
from cloud_helpers import T0, StoredLog, store_log

from cloud_coordinator.catalog import Rider, UserType

DAY = dt.timedelta(days=1)

RIDERS = {
    "r1": Rider("r1", UserType.PRIVATE, "lightweight"),
    "r2": Rider("r2", UserType.PRIVATE, "lightweight"),
    "p1": Rider("p1", UserType.PROFESSIONAL, "extended", "t1"),
    "p2": Rider("p2", UserType.PROFESSIONAL, "extended", "t2"),
    "q1": Rider("q1", UserType.PRIVATE, "lightweight", "t1"),
}


@dataclass
class World:
    """The API and the logs stored for each rider."""

    env: ApiEnv
    logs: dict[str, list[StoredLog]] = field(default_factory=dict)

    def log(self, rider: str, index: int = 0) -> StoredLog:
        return self.logs[rider][index]


def build_world(env: ApiEnv) -> World:
    """Store and catalogue every rider's logs; r1 and p2 each have a crash."""
    world = World(env)
    plan = {
        "r1": [(T0, False), (T0 + DAY, True)],
        "r2": [(T0 + 2 * DAY, False)],
        "p1": [(T0 + 3 * DAY, False)],
        "p2": [(T0, True)],
        "q1": [(T0, False)],
    }
    for rider_id, rides in plan.items():
        rider = env.catalog.upsert_rider(RIDERS[rider_id])
        world.logs[rider_id] = [
            store_log(
                env.store,
                env.catalog,
                env.buckets,
                rider=rider,
                suit=f"SUIT-{rider_id}",
                start=start,
                crash=crash,
            )
            for start, crash in rides
        ]
    return world
