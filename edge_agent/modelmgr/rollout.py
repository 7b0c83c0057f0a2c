"""The roll-out plan: which model version each gateway should run.

The coordinator publishes the plan as a TUF target beside the models
(``{model_name}/rollout.json``, schema ``model-rollout/1``), so it is signed
like them and a gateway decides from verified data alone, also offline::

    {"schema": "model-rollout/1", "model_name": "crash-detector",
     "sequence": 3, "stage": "canary" | "complete" | "halted",
     "candidate": {"version": "1.2.0", "model": "<target>",
                   "metadata": "<target>", "reference": "<target>"},
     "stable": {...same fields...} | null,
     "canary": {"gateways": ["gw-1"], "share": 0.1, "salt": "1.2.0"},
     "updated_utc": "<ISO 8601>", "note": "..."}

``canary``: the candidate goes to the listed gateways and to those whose id
hashes (SHA-256 of ``salt/gateway_id``) into the first ``share`` of the
range; every other gateway stays on ``stable`` until the stage is
``complete``. ``halted`` sends everyone to ``stable`` (a canary refused the
candidate, or R&D stopped it). A gateway never installs a version lower than
or equal to the one it runs: going back to an earlier model means publishing
it again under a new version.

Versions are ``MAJOR.MINOR.PATCH`` integers. Errors: ``RolloutDocError``
naming the source and field.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

__all__ = [
    "ROLLOUT_SCHEMA",
    "CanaryRule",
    "ReleaseRef",
    "RolloutDocError",
    "RolloutPlan",
    "Stage",
    "parse_version",
    "release_targets",
    "rollout_target_path",
]

ROLLOUT_SCHEMA = "model-rollout/1"
_VERSION = re.compile(r"(0|[1-9]\d{0,5})\.(0|[1-9]\d{0,5})\.(0|[1-9]\d{0,5})")
# Resolution of the canary hash: 2**32 buckets, so a share is exact to 1e-9.
_HASH_BUCKETS = 1 << 32


class RolloutDocError(ValueError):
    """A roll-out document is malformed."""


class Stage(StrEnum):
    """Where a roll-out stands."""

    CANARY = "canary"
    COMPLETE = "complete"
    HALTED = "halted"


def parse_version(text: str, source: str = "version") -> tuple[int, int, int]:
    """Return ``MAJOR.MINOR.PATCH`` as a tuple of integers.

    Raises:
        RolloutDocError: ``text`` is not of that form.
    """
    match = _VERSION.fullmatch(text)
    if match is None:
        raise RolloutDocError(f"{source}: expected MAJOR.MINOR.PATCH, found {text!r}")
    major, minor, patch = (int(part) for part in match.groups())
    return major, minor, patch


def rollout_target_path(model_name: str) -> str:
    """Return the TUF target path of a model's roll-out plan."""
    return f"{model_name}/rollout.json"


@dataclass(frozen=True)
class ReleaseRef:
    """The TUF target paths of one published model version."""

    version: str
    model: str
    metadata: str
    reference: str

    def paths(self) -> tuple[str, str, str]:
        """Return the three target paths."""
        return self.model, self.metadata, self.reference

    def to_dict(self) -> dict[str, str]:
        """Return the JSON form."""
        return {
            "version": self.version,
            "model": self.model,
            "metadata": self.metadata,
            "reference": self.reference,
        }

    @classmethod
    def from_dict(cls, data: object, source: str) -> ReleaseRef:
        """Parse the JSON form.

        Raises:
            RolloutDocError: a field is missing or not a non-empty string.
        """
        if not isinstance(data, dict):
            raise RolloutDocError(f"{source}: expected an object, found {data!r:.60}")
        values = {}
        for name in ("version", "model", "metadata", "reference"):
            value = data.get(name)
            if not isinstance(value, str) or not value:
                raise RolloutDocError(
                    f"{source}.{name}: expected a non-empty string, found {value!r:.60}"
                )
            values[name] = value
        parse_version(values["version"], f"{source}.version")
        return cls(**values)


def release_targets(model_name: str, version: str) -> ReleaseRef:
    """Return the target paths a release of ``version`` is published under."""
    base = f"{model_name}/{version}"
    return ReleaseRef(
        version=version,
        model=f"{base}/{model_name}-{version}.tflite",
        metadata=f"{base}/{model_name}-{version}.json",
        reference=f"{base}/reference-crashes.npz",
    )


@dataclass(frozen=True)
class CanaryRule:
    """Which gateways get a candidate first."""

    gateways: tuple[str, ...] = ()
    share: float = 0.0
    salt: str = ""

    def selects(self, gateway_id: str) -> bool:
        """Return whether ``gateway_id`` is a canary."""
        if gateway_id in self.gateways:
            return True
        if self.share <= 0.0:
            return False
        digest = hashlib.sha256(f"{self.salt}/{gateway_id}".encode()).digest()
        return int.from_bytes(digest[:4], "big") < self.share * _HASH_BUCKETS


@dataclass(frozen=True)
class RolloutPlan:
    """The signed statement of which version which gateway should run."""

    model_name: str
    sequence: int
    stage: Stage
    candidate: ReleaseRef
    stable: ReleaseRef | None
    canary: CanaryRule = field(default_factory=CanaryRule)
    updated_utc: str = ""
    note: str = ""

    def release_for(self, gateway_id: str) -> ReleaseRef | None:
        """Return the release ``gateway_id`` should run (None: keep its own)."""
        if self.stage is Stage.COMPLETE:
            return self.candidate
        if self.stage is Stage.CANARY and self.canary.selects(gateway_id):
            return self.candidate
        return self.stable

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON form."""
        return {
            "schema": ROLLOUT_SCHEMA,
            "model_name": self.model_name,
            "sequence": self.sequence,
            "stage": self.stage.value,
            "candidate": self.candidate.to_dict(),
            "stable": None if self.stable is None else self.stable.to_dict(),
            "canary": {
                "gateways": list(self.canary.gateways),
                "share": self.canary.share,
                "salt": self.canary.salt,
            },
            "updated_utc": self.updated_utc,
            "note": self.note,
        }

    def to_bytes(self) -> bytes:
        """Return the JSON bytes published as the TUF target."""
        return (json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n").encode()

    @classmethod
    def from_bytes(cls, data: bytes, source: str) -> RolloutPlan:
        """Parse a roll-out document; ``source`` names it in errors.

        Raises:
            RolloutDocError: not JSON, another schema, or a bad field.
        """
        try:
            doc = json.loads(data)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise RolloutDocError(f"{source}: not JSON: {exc}") from exc
        if not isinstance(doc, dict) or doc.get("schema") != ROLLOUT_SCHEMA:
            found = doc.get("schema") if isinstance(doc, dict) else type(doc).__name__
            raise RolloutDocError(
                f"{source}: schema: expected {ROLLOUT_SCHEMA!r}, found {found!r}"
            )
        name = doc.get("model_name")
        sequence = doc.get("sequence")
        if not isinstance(name, str) or not name:
            raise RolloutDocError(f"{source}: model_name: expected a name")
        if not isinstance(sequence, int) or isinstance(sequence, bool) or sequence < 1:
            raise RolloutDocError(f"{source}: sequence: expected an integer >= 1")
        try:
            stage = Stage(str(doc.get("stage")))
        except ValueError as exc:
            raise RolloutDocError(
                f"{source}: stage: expected one of {[s.value for s in Stage]}, "
                f"found {doc.get('stage')!r}"
            ) from exc
        canary = doc.get("canary")
        if not isinstance(canary, dict):
            raise RolloutDocError(f"{source}: canary: expected an object")
        gateways = canary.get("gateways", [])
        share = canary.get("share", 0.0)
        salt = canary.get("salt", "")
        if not isinstance(gateways, list) or not all(
            isinstance(g, str) and g for g in gateways
        ):
            raise RolloutDocError(f"{source}: canary.gateways: expected gateway ids")
        if not isinstance(share, int | float) or not 0.0 <= float(share) <= 1.0:
            raise RolloutDocError(f"{source}: canary.share: expected 0..1")
        if not isinstance(salt, str):
            raise RolloutDocError(f"{source}: canary.salt: expected a string")
        stable_doc = doc.get("stable")
        return cls(
            model_name=name,
            sequence=sequence,
            stage=stage,
            candidate=ReleaseRef.from_dict(
                doc.get("candidate"), f"{source}: candidate"
            ),
            stable=None
            if stable_doc is None
            else ReleaseRef.from_dict(stable_doc, f"{source}: stable"),
            canary=CanaryRule(tuple(gateways), float(share), salt),
            updated_utc=str(doc.get("updated_utc", "")),
            note=str(doc.get("note", "")),
        )
