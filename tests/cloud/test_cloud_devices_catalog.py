"""The device registry (catalog migration 4) on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from cloud_coordinator.catalog import Catalog, Device, InvalidRecord


def test_devices_register_move_and_list(any_catalog: Catalog) -> None:
    first = any_catalog.upsert_device(Device("d-1", "r-1"))
    assert (first.device_id, first.rider_id, first.suit_id) == ("d-1", "r-1", "d-1")
    assert first.created_at is not None

    any_catalog.upsert_device(Device("d-2", "r-2", "SUIT-9"))
    moved = any_catalog.upsert_device(Device("d-1", "r-3", "SUIT-1"))

    assert (moved.rider_id, moved.suit_id) == ("r-3", "SUIT-1")
    assert moved.created_at == first.created_at
    assert any_catalog.get_device("d-1") == moved
    assert any_catalog.get_device("d-404") is None
    assert [d.device_id for d in any_catalog.list_devices()] == ["d-1", "d-2"]
    assert [d.device_id for d in any_catalog.list_devices("r-2")] == ["d-2"]


@pytest.mark.parametrize("device_id", ["", "..", "a/b", "x\x00"])
def test_devices_refuse_malformed_ids(any_catalog: Catalog, device_id: str) -> None:
    with pytest.raises(InvalidRecord, match="device_id"):
        any_catalog.upsert_device(Device(device_id, "r-1"))
    with pytest.raises(InvalidRecord):
        any_catalog.get_device(device_id)
