"""Live device data: JSON samples over MQTT into raw window objects.

Online devices publish one sample per message on ``devices/{id}/data``
(:mod:`.samples` describes and checks the payload, :mod:`.units` the units
accepted). :class:`DeviceDataWorker` consumes them through a shared
subscription, groups them per device and time window, writes gzip CSV
objects to the raw bucket (:mod:`.writer`, deterministic keys and bytes),
catalogues them, keeps refused messages aside (:mod:`.quarantine`) and
acknowledges only after the commit. Devices map to riders through the
catalog's device registry. ``cloud-coordinator devices`` is the command.
"""

from .errors import DeviceDataError, FlushFailed, MalformedSample
from .quarantine import QUARANTINE_SCHEMA, Quarantine
from .samples import SAMPLE_SCHEMA, DeviceSample, SampleLimits, parse_sample
from .worker import DeviceDataWorker, DeviceWorkerSettings, WorkerStats
from .writer import OBJECT_TYPE, WindowCommit, WindowKey, WindowWriter

__all__ = [
    "OBJECT_TYPE",
    "QUARANTINE_SCHEMA",
    "SAMPLE_SCHEMA",
    "DeviceDataError",
    "DeviceDataWorker",
    "DeviceSample",
    "DeviceWorkerSettings",
    "FlushFailed",
    "MalformedSample",
    "Quarantine",
    "SampleLimits",
    "WindowCommit",
    "WindowKey",
    "WindowWriter",
    "WorkerStats",
    "parse_sample",
]
