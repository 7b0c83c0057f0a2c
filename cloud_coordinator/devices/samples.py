"""Parse and check one live sample a device published.

Payload (schema ``device-sample/1``, UTF-8 JSON, one sample per message)::

    {"schema": "device-sample/1",
     "ts": "2026-12-04T18:00:00.010Z",        # ISO 8601 with a zone, or
     "ts": 1796407200010, "ts_unit": "ms",    # a number and its unit
     "device_id": "d-7",                      # optional; must match the topic
     "readings": {"acc_x": {"value": 0.02, "unit": "g"}, ...}}

A timestamp without a zone, a number without ``ts_unit``, a unit this
service does not know (:mod:`.units`), a value outside its quantity's range,
a time further than ``max_future_s`` ahead or ``max_age_s`` back, or an
unknown field is refused with :class:`~.errors.MalformedSample`, whose
``reason`` is a short code for counting and whose message names the topic,
the field and what was expected.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from dataclasses import dataclass, field
from typing import Any

from .errors import MalformedSample
from .units import unit_rule

__all__ = [
    "SAMPLE_SCHEMA",
    "DeviceSample",
    "SampleLimits",
    "device_of_topic",
    "parse_sample",
]

SAMPLE_SCHEMA = "device-sample/1"
# A sample is one instant of one device; 32 channels cover an IMU with
# magnetometer, GNSS, environment and battery several times over.
MAX_READINGS = 32
_NAME_RE = re.compile(r"[a-z][a-z0-9_]{0,31}")
_DEVICE_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_FIELDS = frozenset({"schema", "ts", "ts_unit", "device_id", "readings"})
# Microseconds per unit of a numeric timestamp (since the Unix epoch, UTC).
_TS_UNITS_US: dict[str, float] = {"s": 1e6, "ms": 1e3, "us": 1.0, "ns": 1e-3}
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_MICROSECOND = dt.timedelta(microseconds=1)
# Devices buffer while offline; a week of backlog is accepted, older data
# is more likely a clock that was never set (1970) than a real sample.
DEFAULT_MAX_AGE_S = 7 * 24 * 3600.0
# Device clocks drift; five minutes ahead is tolerated, more is a bad clock.
DEFAULT_MAX_FUTURE_S = 300.0


@dataclass(frozen=True)
class SampleLimits:
    """How far from the receiver's clock a sample's time may be."""

    max_age_s: float = DEFAULT_MAX_AGE_S
    max_future_s: float = DEFAULT_MAX_FUTURE_S


@dataclass(frozen=True)
class DeviceSample:
    """A checked sample: time in µs since the epoch, values in stored units.

    ``values`` maps CSV column names (``acc_x_mps2``) to values.
    """

    device_id: str
    t_us: int
    values: dict[str, float] = field(default_factory=dict)


def _malformed(reason: str, topic: str, text: str) -> MalformedSample:
    return MalformedSample(reason, f"{topic}: {text}")


def device_of_topic(topic: str, prefix: str = "devices") -> str:
    """Return the device id of a ``{prefix}/{device_id}/data`` topic.

    Raises:
        MalformedSample: another topic, or an id that cannot be a device's.
    """
    head = f"{prefix}/"
    if not topic.startswith(head) or not topic.endswith("/data"):
        raise _malformed("bad_topic", topic, f"expected {prefix}/{{device_id}}/data")
    device_id = topic[len(head) : -len("/data")]
    if not _DEVICE_RE.fullmatch(device_id):
        raise _malformed(
            "bad_topic", topic, f"device id {device_id!r} is not 1-64 of A-Za-z0-9._-"
        )
    return device_id


def _refuse_constant(name: str) -> float:
    raise ValueError(f"{name} is not a number JSON allows")


def _timestamp_us(topic: str, document: dict[str, Any]) -> int:
    ts = document.get("ts")
    unit = document.get("ts_unit")
    if isinstance(ts, str):
        if unit is not None:
            raise _malformed(
                "bad_timestamp", topic, "ts_unit goes with numeric ts only"
            )
        try:
            parsed = dt.datetime.fromisoformat(ts)
        except ValueError as exc:
            raise _malformed(
                "bad_timestamp", topic, f"ts {ts!r} is not ISO 8601"
            ) from exc
        if parsed.tzinfo is None or parsed.utcoffset() is None:
            raise _malformed(
                "bad_timestamp", topic, f"ts {ts!r} has no time zone (add Z or +hh:mm)"
            )
        return (parsed - _EPOCH) // _MICROSECOND
    if isinstance(ts, bool) or not isinstance(ts, int | float):
        raise _malformed(
            "bad_timestamp",
            topic,
            f"ts {ts!r}: expected an ISO 8601 string or a number",
        )
    if unit not in _TS_UNITS_US:
        raise _malformed(
            "bad_timestamp",
            topic,
            f"numeric ts needs ts_unit in {sorted(_TS_UNITS_US)}, found {unit!r}",
        )
    if isinstance(ts, float) and not math.isfinite(ts):
        raise _malformed("bad_timestamp", topic, f"ts {ts!r} is not finite")
    if isinstance(ts, int):
        # Integers stay exact (a float holds only 53 bits).
        return ts // 1000 if unit == "ns" else ts * int(_TS_UNITS_US[unit])
    return round(ts * _TS_UNITS_US[unit])


def _readings(topic: str, readings: Any) -> dict[str, float]:
    if not isinstance(readings, dict) or not readings:
        raise _malformed("bad_readings", topic, "readings must be a non-empty object")
    if len(readings) > MAX_READINGS:
        raise _malformed(
            "bad_readings", topic, f"{len(readings)} readings, at most {MAX_READINGS}"
        )
    values: dict[str, float] = {}
    for name, reading in readings.items():
        where = f"readings.{name}"
        if not _NAME_RE.fullmatch(name):
            raise _malformed(
                "bad_readings", topic, f"{where}: name must match {_NAME_RE.pattern}"
            )
        if not isinstance(reading, dict) or set(reading) != {"value", "unit"}:
            raise _malformed(
                "bad_readings", topic, f"{where}: expected {{'value': x, 'unit': u}}"
            )
        value, unit = reading["value"], reading["unit"]
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _malformed(
                "bad_value", topic, f"{where}: value {value!r} not a number"
            )
        rule = unit_rule(unit) if isinstance(unit, str) else None
        if rule is None:
            raise _malformed("bad_unit", topic, f"{where}: unit {unit!r} is not known")
        converted = rule.convert(float(value))
        quantity = rule.quantity
        if not quantity.low <= converted <= quantity.high:
            raise _malformed(
                "out_of_range",
                topic,
                f"{where}: {value!r} {unit} is outside the plausible "
                f"{quantity.name} range {quantity.low}..{quantity.high} "
                f"{quantity.suffix}",
            )
        column = f"{name}_{quantity.suffix}"
        if column in values:
            raise _malformed("bad_readings", topic, f"{where}: {column} given twice")
        values[column] = converted
    return values


def parse_sample(
    topic: str,
    payload: bytes,
    *,
    now: dt.datetime,
    limits: SampleLimits | None = None,
    prefix: str = "devices",
) -> DeviceSample:
    """Return the checked sample of one message.

    Args:
        topic: where it was published (gives the device id).
        payload: the message body.
        now: the receiver's clock (aware), for the age and future checks.
        limits: allowed age and lead (defaults of :class:`SampleLimits`).
        prefix: the devices topic prefix.

    Raises:
        MalformedSample: anything wrong, with a reason code and a message.
    """
    limits = limits or SampleLimits()
    device_id = device_of_topic(topic, prefix)
    try:
        document = json.loads(payload.decode("utf-8"), parse_constant=_refuse_constant)
    except (UnicodeDecodeError, ValueError) as exc:
        raise _malformed("not_json", topic, f"not UTF-8 JSON: {exc}") from exc
    if not isinstance(document, dict):
        raise _malformed("not_json", topic, "expected a JSON object")
    if document.get("schema") != SAMPLE_SCHEMA:
        raise _malformed(
            "bad_schema",
            topic,
            f"schema {document.get('schema')!r}, expected {SAMPLE_SCHEMA!r}",
        )
    unknown = sorted(set(document) - _FIELDS)
    if unknown:
        raise _malformed("unknown_field", topic, f"unknown fields {unknown}")
    claimed = document.get("device_id", device_id)
    if claimed != device_id:
        raise _malformed(
            "device_mismatch", topic, f"device_id {claimed!r} is not the topic's"
        )
    t_us = _timestamp_us(topic, document)
    now_us = (now - _EPOCH) // _MICROSECOND
    if t_us > now_us + limits.max_future_s * 1e6:
        raise _malformed(
            "future_timestamp",
            topic,
            f"ts is {(t_us - now_us) / 1e6:.0f} s ahead of the receiver's clock "
            f"(at most {limits.max_future_s:.0f} s allowed)",
        )
    if t_us < now_us - limits.max_age_s * 1e6:
        raise _malformed(
            "ancient_timestamp",
            topic,
            f"ts is {(now_us - t_us) / 86400e6:.1f} days old "
            f"(at most {limits.max_age_s / 86400:.1f} days accepted)",
        )
    return DeviceSample(device_id, t_us, _readings(topic, document.get("readings")))
