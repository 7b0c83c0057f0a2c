"""Publish crash models: rebuild from head weights, gate, sign, announce.

One publication is one new TUF targets version holding, for the new model
version ``V`` of model ``M`` (see ``edge_agent.modelmgr.rollout``)::

    M/V/M-V.tflite               the model
    M/V/M-V.json                 its metadata (head, decision rule, figures)
    M/V/reference-crashes.npz    validation crashes it detects (shadow test)
    M/rollout.json               the roll-out plan naming V as candidate

all added in one signed change, so a gateway sees all four or none. After
that the version is announced, retained, on ``{models}/M/announce``; the
announcement only wakes gateways up, they trust the TUF metadata alone.

The gate (``validation.gate``) compares the candidate with the model the
fleet runs now (the plan's stable or completed candidate, else the shipped
model) on the coordinator's validation rides. A refused candidate is
published only with R&D's approval (``approve=True``), which is recorded in
its metadata. Going back to an earlier model is :meth:`ModelPublisher.
republish`: the old bytes under a new, higher version, because gateways
(and TUF) refuse to go back to a lower one.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from edge_agent.modelmgr.reference import write_reference_crashes
from edge_agent.modelmgr.rollout import (
    CanaryRule,
    ReleaseRef,
    RolloutDocError,
    RolloutPlan,
    Stage,
    parse_version,
    release_targets,
    rollout_target_path,
)
from models.errors import ModelError
from models.head import ModelHead
from models.metadata import ModelMetadata, load_metadata, save_metadata
from models.registry import ModelInfo, load_model_info, shipped_model

from ..broker.errors import BrokerError
from ..catalog.errors import CatalogError
from ..catalog.model_registry import ModelRelease, ModelRollout
from .errors import ModelBuildError, PublishRefused, RepoStateError, RolloutError
from .tufrepo import TufRepository
from .validation import (
    GateDecision,
    ModelScore,
    ValidationSet,
    gate,
    pick_reference_crashes,
    score_model,
)

__all__ = [
    "ANNOUNCE_SCHEMA",
    "Announcer",
    "ModelPublisher",
    "PublishOutcome",
    "ReleaseRecords",
    "RolloutSettings",
    "announce_topic",
]

_LOGGER = logging.getLogger(__name__)

ANNOUNCE_SCHEMA = "model-announce/1"


class ReleaseRecords(Protocol):
    """What publishing records in the catalog (``Catalog`` fits)."""

    def record_model_release(self, release: ModelRelease) -> ModelRelease:
        """Record a published version."""
        ...

    def record_model_rollout(self, rollout: ModelRollout) -> ModelRollout:
        """Record a roll-out step."""
        ...


class Announcer(Protocol):
    """What publishing needs of an MQTT client (``CloudMqttClient`` fits)."""

    def publish(
        self,
        topic: str,
        payload: Mapping[str, Any],
        qos: int = 1,
        retain: bool = False,
        *,
        timeout_s: float | None = None,
    ) -> None:
        """Send ``payload`` and wait for the broker's acknowledgement."""
        ...


def announce_topic(models_prefix: str, model_name: str) -> str:
    """Return the retained announcement topic of a model."""
    return f"{models_prefix}/{model_name}/announce"


@dataclass(frozen=True)
class RolloutSettings:
    """Who gets a new candidate first (both empty: everyone at once)."""

    canary_gateways: tuple[str, ...] = ()
    canary_share: float = 0.0

    @property
    def staged(self) -> bool:
        """Return whether a new candidate goes to canaries first."""
        return bool(self.canary_gateways) or self.canary_share > 0.0


@dataclass(frozen=True)
class PublishOutcome:
    """What a publication attempt did."""

    published: bool
    version: str
    gate: GateDecision
    approved: bool
    targets_version: int | None = None
    plan: RolloutPlan | None = None
    announced: bool = False

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready summary."""
        return {
            "published": self.published,
            "version": self.version,
            "approved": self.approved,
            "gate": self.gate.to_dict(),
            "targets_version": self.targets_version,
            "stage": None if self.plan is None else self.plan.stage.value,
            "announced": self.announced,
        }


def _utc_text(clock: Callable[[], dt.datetime]) -> str:
    return clock().astimezone(dt.UTC).isoformat(timespec="seconds")


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _head(kernel: npt.ArrayLike, bias: npt.ArrayLike | float) -> ModelHead:
    try:
        flat_bias = np.asarray(bias, dtype=np.float64).reshape(-1)
        if flat_bias.size != 1:
            raise ValueError(f"bias must be one value, found {flat_bias.size}")
        return ModelHead(
            np.asarray(kernel, dtype=np.float32).reshape(-1), float(flat_bias[0])
        )
    except (TypeError, ValueError) as exc:
        raise ModelBuildError(f"head weights: {exc}") from exc


class ModelPublisher:
    """Publish model versions into one TUF repository; see the module doc."""

    def __init__(
        self,
        repo: TufRepository,
        validation: Callable[[], ValidationSet],
        *,
        model_name: str = "crash-detector",
        announcer: Announcer | None = None,
        models_prefix: str = "models",
        rollout: RolloutSettings | None = None,
        shipped: Callable[[], ModelInfo] = shipped_model,
        clock: Callable[[], dt.datetime] = _now,
        records: ReleaseRecords | None = None,
    ) -> None:
        """Set the repository, validation data loader, announcer and roll-out.

        Args:
            repo: the TUF repository (initialised).
            validation: returns the validation set (called once, lazily).
            model_name: the model family published (``crash-detector``).
            announcer: an MQTT client; None publishes without announcing.
            models_prefix: the announcement topic prefix.
            rollout: canary settings for new candidates.
            shipped: the model the fleet runs before anything is published.
            clock: current time (tests pass a fixed one).
            records: the catalog to record releases and roll-out steps in
                (None: not recorded; the TUF repository stays the truth).
        """
        self.repo = repo
        self.model_name = model_name
        self.announcer = announcer
        self.models_prefix = models_prefix
        self.rollout = rollout or RolloutSettings()
        self._validation_loader = validation
        self._validation: ValidationSet | None = None
        self._shipped = shipped
        self._clock = clock
        self.records = records

    @property
    def validation(self) -> ValidationSet:
        """Return the validation set (loaded on first use)."""
        if self._validation is None:
            self._validation = self._validation_loader()
        return self._validation

    # -- what is published --------------------------------------------------

    def current_plan(self) -> RolloutPlan | None:
        """Return the published roll-out plan, or None before the first one.

        Raises:
            RepoStateError: the repository is missing or the plan malformed.
        """
        path = rollout_target_path(self.model_name)
        if path not in self.repo.targets():
            return None
        try:
            return RolloutPlan.from_bytes(self.repo.target_bytes(path), path)
        except RolloutDocError as exc:
            raise RepoStateError(f"{self.repo.label}: {exc}") from exc

    def published_versions(self) -> list[str]:
        """Return every published version of the model, oldest first."""
        prefix = f"{self.model_name}/"
        versions = set()
        for path in self.repo.targets():
            parts = path[len(prefix) :].split("/") if path.startswith(prefix) else []
            if len(parts) == 2:
                try:
                    parse_version(parts[0])
                except RolloutDocError:
                    continue
                versions.add(parts[0])
        return sorted(versions, key=parse_version)

    def next_version(self) -> str:
        """Return the next minor version above everything published or shipped."""
        known = [*self.published_versions(), self._shipped().version]
        major, minor, _ = max(parse_version(v) for v in known)
        return f"{major}.{minor + 1}.0"

    @staticmethod
    def fleet_release(plan: RolloutPlan | None) -> ReleaseRef | None:
        """Return the release every gateway outside a canary runs (None: shipped)."""
        if plan is None:
            return None
        return plan.candidate if plan.stage is Stage.COMPLETE else plan.stable

    def _release_files(self, release: ReleaseRef, folder: Path) -> ModelInfo:
        """Download a published release into ``folder`` and verify it."""
        model_path = folder / Path(release.model).name
        metadata_path = folder / Path(release.metadata).name
        model_path.write_bytes(self.repo.target_bytes(release.model))
        metadata_path.write_bytes(self.repo.target_bytes(release.metadata))
        try:
            return load_model_info(model_path, metadata_path)
        except ModelError as exc:
            raise RepoStateError(
                f"{self.repo.label}: release {release.version}: {exc}"
            ) from exc

    def _score(self, info: ModelInfo) -> ModelScore:
        return score_model(
            info.path, info.version, info.metadata.decision, self.validation
        )

    # -- publishing -----------------------------------------------------------

    def publish_from_head(
        self,
        head_kernel: npt.ArrayLike,
        head_bias: npt.ArrayLike | float,
        *,
        base_model: Path | None = None,
        approve: bool = False,
        run_id: str | None = None,
        note: str = "",
    ) -> PublishOutcome:
        """Rebuild the full model with new head weights, gate it, publish it.

        Args:
            head_kernel: (k,) or (k, 1) weights of the output layer.
            head_bias: its bias (a number or a one-element array).
            base_model: the Keras network to rebuild from; None is the
                shipped ``models/shipped/<name>.keras``.
            approve: publish even if the gate refuses (R&D's decision).
            run_id: the federated run that produced the weights (recorded).
            note: free text recorded in the roll-out plan.

        Returns:
            The outcome; ``published`` is False when the gate refused and
            ``approve`` was not given (nothing was written).

        Raises:
            ModelBuildError: the weights do not fit the network or the
                rebuilt model fails its check.
            RepoStateError, RepoKeyError, StorageError: the repository
                cannot be read or written.
        """
        from models.rebuild import rebuild_model

        head = _head(head_kernel, head_bias)
        version = self.next_version()
        with tempfile.TemporaryDirectory(prefix="model-publish-") as tmp:
            out_path = Path(tmp) / f"{self.model_name}-{version}.tflite"
            try:
                metadata = rebuild_model(head, out_path, version, keras_path=base_model)
            except (ModelError, ValueError) as exc:
                raise ModelBuildError(
                    f"{self.model_name} {version}: cannot rebuild from the head "
                    f"weights: {exc}"
                ) from exc
            provenance = {"source": "federated", "run_id": run_id}
            metadata = dataclasses.replace(
                metadata, training={**metadata.training, "publication": provenance}
            )
            save_metadata(metadata, out_path.with_suffix(".json"))
            return self.publish_model(
                out_path, out_path.with_suffix(".json"), approve=approve, note=note
            )

    def publish_model(
        self,
        model_path: Path,
        metadata_path: Path,
        *,
        approve: bool = False,
        note: str = "",
    ) -> PublishOutcome:
        """Gate and publish a ready model file whose metadata names its version.

        Raises:
            PublishRefused: another model family, a malformed version, or a
                version not above everything published or shipped.
            ModelBuildError: the files do not verify against each other.
            RepoStateError, RepoKeyError, StorageError: see above.
        """
        try:
            info = load_model_info(model_path, metadata_path)
        except ModelError as exc:
            raise ModelBuildError(f"{model_path}: {exc}") from exc
        version = info.version
        if info.name != self.model_name:
            raise PublishRefused(
                f"{model_path}: a {info.name!r} model, this repository publishes "
                f"{self.model_name!r}"
            )
        try:
            parsed = parse_version(version, f"{metadata_path}: version")
        except RolloutDocError as exc:
            raise PublishRefused(str(exc)) from exc
        newest = max(
            [*self.published_versions(), self._shipped().version], key=parse_version
        )
        if parsed <= parse_version(newest):
            raise PublishRefused(
                f"{self.model_name} {version}: not above the newest published or "
                f"shipped version {newest}; gateways refuse to go back"
            )

        plan = self.current_plan()
        fleet = self.fleet_release(plan)
        candidate = self._score(info)
        with tempfile.TemporaryDirectory(prefix="model-current-") as tmp:
            current_info = (
                self._shipped()
                if fleet is None
                else self._release_files(fleet, Path(tmp))
            )
            current = self._score(current_info)
        decision = gate(candidate, current)
        _LOGGER.info(
            "%s %s: gate %s against %s: %s",
            self.model_name,
            version,
            "passed" if decision.passed else "refused",
            current.version,
            "; ".join(decision.reasons),
        )
        if not decision.passed and not approve:
            return PublishOutcome(False, version, decision, approved=False)

        rule = info.metadata.decision
        reference = pick_reference_crashes(self.validation, candidate, rule)
        metadata = dataclasses.replace(
            info.metadata,
            evaluation={
                **info.metadata.evaluation,
                "gate": decision.to_dict(),
                "approved_by_rnd": approve and not decision.passed,
                "reference_crashes": reference.count,
            },
        )
        with tempfile.TemporaryDirectory(prefix="model-meta-") as tmp:
            meta_file = Path(tmp) / "metadata.json"
            save_metadata(metadata, meta_file)
            metadata_bytes = meta_file.read_bytes()

        release = release_targets(self.model_name, version)
        new_plan = self._next_plan(plan, release, note)
        kind = {"model_name": self.model_name, "version": version}
        targets_version = self.repo.change_targets(
            {
                release.model: info.path.read_bytes(),
                release.metadata: metadata_bytes,
                release.reference: write_reference_crashes(reference),
                rollout_target_path(self.model_name): new_plan.to_bytes(),
            },
            custom={
                release.model: {**kind, "kind": "model"},
                release.metadata: {**kind, "kind": "metadata"},
                release.reference: {**kind, "kind": "reference-crashes"},
            },
        )
        _LOGGER.info(
            "%s %s: published as TUF targets v%d, roll-out %s (%s)",
            self.model_name,
            version,
            targets_version,
            new_plan.stage.value,
            "approved by R&D" if not decision.passed else "gate passed",
        )
        self._record_release(metadata, decision, approve, targets_version)
        self._record_rollout(new_plan)
        announced = self.announce(new_plan, targets_version)
        return PublishOutcome(
            True,
            version,
            decision,
            approved=approve,
            targets_version=targets_version,
            plan=new_plan,
            announced=announced,
        )

    def republish(self, old_version: str, *, note: str = "") -> PublishOutcome:
        """Publish the model of ``old_version`` again under the next version.

        This is how the fleet goes back to an earlier model: TUF and the
        gateways refuse lower versions, so the old bytes come back as a new
        one. It is R&D's decision, so the gate's verdict is recorded but
        does not stop it.

        Raises:
            RolloutError: ``old_version`` was never published.
        """
        if old_version not in self.published_versions():
            raise RolloutError(
                f"{self.model_name} {old_version}: not published; published: "
                f"{self.published_versions()}"
            )
        old = release_targets(self.model_name, old_version)
        version = self.next_version()
        with tempfile.TemporaryDirectory(prefix="model-republish-") as tmp:
            folder = Path(tmp)
            info = self._release_files(old, folder)
            metadata: ModelMetadata = dataclasses.replace(
                load_metadata(info.metadata_path),
                version=version,
                created_utc=_utc_text(self._clock),
                training={
                    **info.metadata.training,
                    "republished_from": old_version,
                },
            )
            model_path = folder / f"{self.model_name}-{version}.tflite"
            info.path.rename(model_path)
            save_metadata(metadata, model_path.with_suffix(".json"))
            return self.publish_model(
                model_path,
                model_path.with_suffix(".json"),
                approve=True,
                note=note or f"republished {old_version} as {version}",
            )

    def _next_plan(
        self, plan: RolloutPlan | None, release: ReleaseRef, note: str
    ) -> RolloutPlan:
        staged = self.rollout.staged
        return RolloutPlan(
            model_name=self.model_name,
            sequence=1 if plan is None else plan.sequence + 1,
            stage=Stage.CANARY if staged else Stage.COMPLETE,
            candidate=release,
            stable=self.fleet_release(plan),
            canary=CanaryRule(
                self.rollout.canary_gateways,
                self.rollout.canary_share,
                salt=release.version,
            ),
            updated_utc=_utc_text(self._clock),
            note=note,
        )

    # -- roll-out ---------------------------------------------------------------

    def set_stage(self, stage: Stage, note: str) -> RolloutPlan:
        """Move the current roll-out to ``stage`` (promote or halt), signed.

        Raises:
            RolloutError: there is no roll-out, or it is already there.
        """
        plan = self.current_plan()
        if plan is None:
            raise RolloutError(f"{self.model_name}: nothing published yet")
        if plan.stage is stage:
            raise RolloutError(
                f"{self.model_name} {plan.candidate.version}: roll-out is already "
                f"{stage.value}"
            )
        if plan.stage is Stage.COMPLETE:
            raise RolloutError(
                f"{self.model_name} {plan.candidate.version}: roll-out is complete; "
                "publish a new version (or republish an old one) instead"
            )
        new_plan = dataclasses.replace(
            plan,
            sequence=plan.sequence + 1,
            stage=stage,
            updated_utc=_utc_text(self._clock),
            note=note,
        )
        targets_version = self.repo.change_targets(
            {rollout_target_path(self.model_name): new_plan.to_bytes()}
        )
        _LOGGER.info(
            "%s %s: roll-out %s -> %s (TUF targets v%d): %s",
            self.model_name,
            plan.candidate.version,
            plan.stage.value,
            stage.value,
            targets_version,
            note,
        )
        self._record_rollout(new_plan)
        self.announce(new_plan, targets_version)
        return new_plan

    def _record_release(
        self,
        metadata: ModelMetadata,
        decision: GateDecision,
        approve: bool,
        targets_version: int,
    ) -> None:
        if self.records is None:
            return
        training = metadata.training
        publication = training.get("publication") or {}
        if "republished_from" in training:
            source = "republished"
        else:
            source = str(publication.get("source") or "file")
        release = ModelRelease(
            model_name=self.model_name,
            version=metadata.version,
            sha256=metadata.sha256,
            size_bytes=metadata.size_bytes,
            targets_version=targets_version,
            source=source,
            run_id=publication.get("run_id"),
            gate_passed=decision.passed,
            approved=approve,
            figures=decision.to_dict(),
        )
        try:
            self.records.record_model_release(release)
        except CatalogError as exc:
            _LOGGER.error(
                "%s %s: published, but not recorded in the catalog: %s",
                self.model_name,
                metadata.version,
                exc,
            )

    def _record_rollout(self, plan: RolloutPlan) -> None:
        if self.records is None:
            return
        step = ModelRollout(
            model_name=plan.model_name,
            sequence=plan.sequence,
            version=plan.candidate.version,
            stable_version=None if plan.stable is None else plan.stable.version,
            stage=plan.stage.value,
            canary_gateways=plan.canary.gateways,
            canary_share=plan.canary.share,
            note=plan.note,
        )
        try:
            self.records.record_model_rollout(step)
        except CatalogError as exc:
            _LOGGER.error(
                "%s %s: roll-out step %d not recorded in the catalog: %s",
                plan.model_name,
                plan.candidate.version,
                plan.sequence,
                exc,
            )

    def announce(self, plan: RolloutPlan, targets_version: int) -> bool:
        """Publish the retained announcement of ``plan``; return whether sent.

        A failed announcement is logged, not raised: the publication stands
        and gateways find it at their next periodic check.
        """
        if self.announcer is None:
            _LOGGER.info(
                "%s %s: no broker configured, not announced",
                self.model_name,
                plan.candidate.version,
            )
            return False
        topic = announce_topic(self.models_prefix, self.model_name)
        payload = {
            "schema": ANNOUNCE_SCHEMA,
            "model_name": self.model_name,
            "version": plan.candidate.version,
            "targets": [*plan.candidate.paths(), rollout_target_path(self.model_name)],
            "stage": plan.stage.value,
            "sequence": plan.sequence,
            "tuf_targets_version": targets_version,
        }
        try:
            self.announcer.publish(topic, payload, qos=1, retain=True)
        except (BrokerError, ValueError, OSError) as exc:
            _LOGGER.error(
                "%s %s: announcement on %s failed (%s); gateways will find the "
                "version at their next periodic check",
                self.model_name,
                plan.candidate.version,
                topic,
                exc,
            )
            return False
        _LOGGER.info(
            "%s %s: announced on %s (stage %s)",
            self.model_name,
            plan.candidate.version,
            topic,
            plan.stage.value,
        )
        return True
