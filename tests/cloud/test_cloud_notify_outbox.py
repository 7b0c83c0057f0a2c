"""The notification outbox on both catalog backends."""

from __future__ import annotations

import pytest
from cloud_helpers import T0

from cloud_coordinator.catalog import Catalog, InvalidRecord, Rider, UserType
from cloud_coordinator.notify import (
    NotificationAudience,
    NotificationType,
    notification_id_for,
    record_notification,
)


def _world(catalog: Catalog) -> None:
    catalog.upsert_rider(Rider("r1", UserType.PRIVATE))
    catalog.upsert_rider(Rider("p1", UserType.PROFESSIONAL, "extended", "t1"))
    catalog.upsert_rider(Rider("q1", UserType.PRIVATE, None, "t1"))


def _ids(catalog: Catalog, audience: NotificationAudience) -> list[str]:
    return [
        str(item.payload["n"])
        for item in catalog.list_notifications(audience, after_seq=0, limit=100)
    ]


def test_notify_outbox_scopes_by_rider_technician_and_role(
    any_catalog: Catalog,
) -> None:
    _world(any_catalog)
    for n, rider, role in [
        ("a", "r1", None),
        ("b", "p1", None),
        ("c", "q1", None),
        ("d", None, "rnd"),
        ("e", "p1", "technician"),
    ]:
        record_notification(
            any_catalog,
            type=NotificationType.CRASH_DETECTED,
            payload={"n": n},
            rider_id=rider,
            role=role,
        )
    assert _ids(any_catalog, NotificationAudience("rider", rider_id="r1")) == ["a"]
    assert _ids(any_catalog, NotificationAudience("rider", rider_id="p1")) == ["b"]
    # A technician sees professional riders assigned to them only.
    assert _ids(
        any_catalog, NotificationAudience("technician", technician_id="t1")
    ) == ["b", "e"]
    assert _ids(any_catalog, NotificationAudience("rnd")) == ["a", "b", "c", "d"]
    assert _ids(any_catalog, NotificationAudience("admin")) == ["a", "b", "c"]


def test_notify_outbox_stable_id_is_stored_once(any_catalog: Catalog) -> None:
    _world(any_catalog)
    stable = notification_id_for(NotificationType.ANALYTICS_READY, "r1", "log-1")
    assert stable == notification_id_for("analytics_ready", "r1", "log-1")
    for _ in range(3):
        returned = record_notification(
            any_catalog,
            type="analytics_ready",
            payload={"n": "x", "log_id": "log-1"},
            rider_id="r1",
            notification_id=stable,
            created_at=T0,
        )
        assert returned == stable
    items = any_catalog.list_notifications(
        NotificationAudience("rider", rider_id="r1"), after_seq=0, limit=10
    )
    assert [item.notification_id for item in items] == [stable]
    assert items[0].created_at == T0
    assert items[0].payload == {"n": "x", "log_id": "log-1"}
    assert any_catalog.notification_seq(stable) == items[0].seq
    assert any_catalog.last_notification_seq() == items[0].seq


def test_notify_outbox_resumes_after_a_seq(any_catalog: Catalog) -> None:
    _world(any_catalog)
    ids = [
        record_notification(
            any_catalog, type="analytics_ready", payload={"n": str(i)}, rider_id="r1"
        )
        for i in range(5)
    ]
    audience = NotificationAudience("rider", rider_id="r1")
    seq = any_catalog.notification_seq(ids[1])
    assert seq is not None
    later = any_catalog.list_notifications(audience, after_seq=seq, limit=2)
    assert [item.notification_id for item in later] == ids[2:4]


def test_notify_outbox_publication_marks(any_catalog: Catalog) -> None:
    _world(any_catalog)
    crash = record_notification(
        any_catalog, type="crash_detected", payload={"n": "1"}, rider_id="r1"
    )
    record_notification(
        any_catalog, type="analytics_ready", payload={"n": "2"}, rider_id="r1"
    )
    pending = any_catalog.list_unpublished_notifications(
        [NotificationType.CRASH_DETECTED], limit=10
    )
    assert [item.notification_id for item in pending] == [crash]
    assert any_catalog.mark_notifications_published([crash], T0) == 1
    assert any_catalog.mark_notifications_published([crash], T0) == 0
    assert (
        any_catalog.list_unpublished_notifications(
            [NotificationType.CRASH_DETECTED], limit=10
        )
        == []
    )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"type": "coffee_ready", "rider_id": "r1"}, "unknown type"),
        ({"type": "crash_detected"}, "rider_id, a role or both"),
        ({"type": "crash_detected", "role": "pilot"}, "role 'pilot'"),
        ({"type": "crash_detected", "rider_id": "a/b"}, "rider_id"),
    ],
)
def test_notify_outbox_rejects_bad_notifications(
    sqlite_catalog: Catalog, kwargs: dict[str, str], message: str
) -> None:
    with pytest.raises(InvalidRecord, match=message):
        record_notification(
            sqlite_catalog,
            payload={},
            **kwargs,  # type: ignore[arg-type]
        )
    with pytest.raises(InvalidRecord, match="not JSON"):
        record_notification(
            sqlite_catalog, type="crash_detected", rider_id="r1", payload={"x": {1, 2}}
        )
