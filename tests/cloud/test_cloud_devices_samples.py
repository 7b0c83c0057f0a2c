"""Device samples: parsing and checks, the window CSV, merging into objects."""

from __future__ import annotations

import datetime as dt
import gzip
import json
import math
from pathlib import Path
from typing import Any

import pytest

from cloud_coordinator.catalog import Device, SqliteCatalog
from cloud_coordinator.devices import (
    OBJECT_TYPE,
    MalformedSample,
    SampleLimits,
    WindowKey,
    WindowWriter,
    parse_sample,
)
from cloud_coordinator.devices.csvfile import decode_window, encode_window
from edge_agent.upload import BodyChecksum, BucketNames, ChecksumMode, LocalDirStore

NOW = dt.datetime(2026, 12, 4, 18, 0, tzinfo=dt.UTC)
TOPIC = "devices/d-1/data"


def _payload(**fields: Any) -> bytes:
    document: dict[str, Any] = {
        "schema": "device-sample/1",
        "ts": "2026-12-04T17:59:00.250Z",
        "readings": {"acc_x": {"value": 0.5, "unit": "g"}},
    }
    document.update(fields)
    return json.dumps({k: v for k, v in document.items() if v is not None}).encode()


def test_devices_sample_iso_time_and_units_converted() -> None:
    sample = parse_sample(
        TOPIC,
        _payload(
            readings={
                "acc_x": {"value": 0.5, "unit": "g"},
                "gyr_z": {"value": 90, "unit": "deg/s"},
                "temp": {"value": 300.0, "unit": "K"},
            }
        ),
        now=NOW,
    )
    assert sample.device_id == "d-1"
    assert sample.t_us == int(
        dt.datetime(2026, 12, 4, 17, 59, 0, 250000, tzinfo=dt.UTC).timestamp() * 1e6
    )
    assert sample.values["acc_x_mps2"] == pytest.approx(4.903325)
    assert sample.values["gyr_z_rads"] == pytest.approx(math.pi / 2)
    assert sample.values["temp_degc"] == pytest.approx(26.85)


@pytest.mark.parametrize(
    ("ts", "unit"),
    [
        (1796407140.25, "s"),
        (1796407140250, "ms"),
        (1796407140250000, "us"),
        (1796407140250000000, "ns"),
        ("2026-12-04T18:59:00.250+01:00", None),
    ],
)
def test_devices_sample_numeric_time_needs_and_honours_its_unit(
    ts: float | str, unit: str | None
) -> None:
    sample = parse_sample(TOPIC, _payload(ts=ts, ts_unit=unit), now=NOW)
    assert sample.t_us == 1796407140250000


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"\xff\xfe", "not_json"),
        (b"{not json", "not_json"),
        (b"[1, 2]", "not_json"),
        (b'{"schema": "device-sample/1", "ts": NaN}', "not_json"),
        (_payload(schema="device-sample/9"), "bad_schema"),
        (_payload(extra=1), "unknown_field"),
        (_payload(device_id="d-2"), "device_mismatch"),
        (_payload(ts="2026-12-04T17:59:00"), "bad_timestamp"),
        (_payload(ts=1796407140250), "bad_timestamp"),
        (_payload(ts=1796407140250, ts_unit="minutes"), "bad_timestamp"),
        (_payload(ts=True, ts_unit="s"), "bad_timestamp"),
        (_payload(ts="2026-12-04T18:10:00Z"), "future_timestamp"),
        (_payload(ts="1970-01-01T00:00:01Z"), "ancient_timestamp"),
        (_payload(readings={}), "bad_readings"),
        (_payload(readings={"Acc X": {"value": 1, "unit": "g"}}), "bad_readings"),
        (_payload(readings={"acc_x": 1.0}), "bad_readings"),
        (_payload(readings={"acc_x": {"value": "1", "unit": "g"}}), "bad_value"),
        (_payload(readings={"acc_x": {"value": 1, "unit": "furlong"}}), "bad_unit"),
        (_payload(readings={"acc_x": {"value": 900, "unit": "g"}}), "out_of_range"),
    ],
)
def test_devices_sample_refused_with_a_reason(payload: bytes, reason: str) -> None:
    with pytest.raises(MalformedSample) as caught:
        parse_sample(TOPIC, payload, now=NOW)
    assert caught.value.reason == reason
    assert str(caught.value).startswith(f"{TOPIC}: ")


@pytest.mark.parametrize(
    "topic", ["devices/a/b/data", "gateways/d-1/data", "devices//data"]
)
def test_devices_sample_topic_must_name_one_device(topic: str) -> None:
    with pytest.raises(MalformedSample) as caught:
        parse_sample(topic, _payload(), now=NOW)
    assert caught.value.reason == "bad_topic"


def test_devices_sample_limits_are_configurable() -> None:
    limits = SampleLimits(max_age_s=30.0, max_future_s=1.0)
    with pytest.raises(MalformedSample, match="days old"):
        parse_sample(TOPIC, _payload(), now=NOW, limits=limits)


def test_devices_window_csv_is_deterministic_and_reads_back() -> None:
    rows = {
        2_000_000: {"acc_x_mps2": "0.1", "temp_degc": "20.5"},
        1_000_000: {"acc_x_mps2": "-0.25"},
    }
    data = encode_window(rows)
    assert data == encode_window(dict(reversed(list(rows.items()))))
    text = gzip.decompress(data).decode().splitlines()
    assert text == [
        "t_unix_us,t_utc,acc_x_mps2,temp_degc",
        "1000000,1970-01-01 00:00:01.000000,-0.25,",
        "2000000,1970-01-01 00:00:02.000000,0.1,20.5",
    ]
    assert decode_window(data, "x") == rows
    with pytest.raises(ValueError, match="x: not a gzip"):
        decode_window(b"plain", "x")


def _sample(t_s: float, acc: float) -> Any:
    ts = (NOW - dt.timedelta(seconds=60 - t_s)).isoformat()
    payload = _payload(ts=ts, readings={"acc_x": {"value": acc, "unit": "m/s2"}})
    return parse_sample(TOPIC, payload, now=NOW)


def test_devices_writer_merges_drops_repeats_and_reports_conflicts(
    tmp_path: Path,
) -> None:
    store = LocalDirStore(tmp_path / "store")
    buckets = BucketNames()
    store.ensure_bucket(buckets.raw)
    catalog = SqliteCatalog(tmp_path / "catalog.db")
    catalog.migrate()
    device = catalog.upsert_device(Device("d-1", "r-1", "SUIT-1"))
    window = WindowKey("d-1", _sample(0, 0).t_us // 60_000_000 * 60_000_000)

    first = WindowWriter(store, catalog, buckets, "w1")
    result = first.commit(window, device, [_sample(1, 1.0), _sample(2, 2.0)])
    assert (result.added, result.repeats, str(result.outcome)) == (2, 0, "inserted")

    # A restarted worker (empty cache) gets a redelivery plus new samples.
    second = WindowWriter(store, catalog, buckets, "w1")
    result = second.commit(
        window, device, [_sample(2, 2.0), _sample(3, 3.0), _sample(1, 9.0)]
    )
    assert (result.added, result.repeats, len(result.conflicts)) == (1, 1, 1)
    assert str(result.outcome) == "replaced"

    (summary,) = store.list_objects(buckets.raw)
    assert summary.key == f"r-1/SUIT-1/2026/12/04/{first.log_id(window)}.csv.gz"
    rows = decode_window(store.get_object(buckets.raw, summary.key), "object")
    assert [rows[t]["acc_x_mps2"] for t in sorted(rows)] == ["1.0", "2.0", "3.0"]
    stored = catalog.get_object_by_key(buckets.raw, summary.key)
    assert stored is not None
    assert (stored.object_type, stored.sample_count) == (OBJECT_TYPE, 3)
    assert stored.rider_id == "r-1" and stored.suit_id == "SUIT-1"
    catalog.close()


def test_devices_writer_sets_an_unreadable_window_aside(tmp_path: Path) -> None:
    store = LocalDirStore(tmp_path / "store")
    buckets = BucketNames()
    for bucket in (buckets.raw, "quarantine"):
        store.ensure_bucket(bucket)
    catalog = SqliteCatalog(tmp_path / "catalog.db")
    catalog.migrate()
    device = catalog.upsert_device(Device("d-1", "r-1"))
    window = WindowKey("d-1", _sample(0, 0).t_us // 60_000_000 * 60_000_000)
    writer = WindowWriter(store, catalog, buckets, "w1", quarantine_bucket="quarantine")
    key = writer.commit(window, device, [_sample(1, 1.0)]).key.split("/", 1)[1]
    damaged = b"not a window"
    store.put_object(
        buckets.raw,
        key,
        damaged,
        metadata={},
        checksum=BodyChecksum.of(damaged, ChecksumMode.MD5),
    )

    restarted = WindowWriter(
        store, catalog, buckets, "w1", quarantine_bucket="quarantine"
    )
    result = restarted.commit(window, device, [_sample(2, 2.0)])

    assert result.added == 1
    assert store.get_object("quarantine", f"windows/raw/{key}") == damaged
    rows = decode_window(store.get_object(buckets.raw, key), key)
    assert [row["acc_x_mps2"] for row in rows.values()] == ["2.0"]
    catalog.close()
