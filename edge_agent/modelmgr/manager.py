"""The gateway's model manager: check, verify, shadow-test, swap, restore.

One check (:meth:`ModelManager.check`), run periodically and whenever a
model announcement arrives:

1. refresh the TUF metadata (:mod:`.client`), offline from the cache when
   the repository cannot be reached;
2. read the signed roll-out plan and pick the release meant for this gateway
   (canary or not); nothing to do unless its version is above the active one;
3. download its three targets, each verified against the signed hashes;
4. stage them in a slot, check the metadata against the model (SHA-256,
   version, contract) and open it on LiteRT;
5. shadow-test it against the active model (:mod:`.shadow`);
6. swap atomically (:mod:`.slots`) and load it for the agent; if loading
   fails, restore the previous model at once.

A refusal at any step leaves the active model running and is logged at
ERROR with the gateway, the version and the reason. Versions refused by the
shadow test or the install are remembered and not tried again; a refused
verification is tried again at the next check (the repository may be
repaired). The status reports the active version and the last attempt.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from edge_agent.mqtt.inbound import InboundKind, InboundMessage
from models.errors import ModelError
from models.registry import ModelInfo, load_model_info, shipped_model
from models.runtime import CrashModelRunner

from .client import TufModelClient
from .errors import (
    ModelInstallError,
    ModelUpdateError,
    ShadowTestFailed,
    UpdateRefused,
    UpdateUnavailable,
)
from .reference import ReferenceFileError, read_reference_crashes
from .rollout import ReleaseRef, RolloutDocError, parse_version
from .shadow import HeldOutWindows, load_held_out, run_shadow_test
from .slots import METADATA_FILE, MODEL_FILE, REFERENCE_FILE, ModelSlots, Slot

__all__ = ["ModelManager", "UpdateOutcome", "UpdateResult"]

_LOGGER = logging.getLogger(__name__)

# The shadow test opens each model with a small batch: the reference set is
# a few dozen windows, and a 1 GB gateway runs its ride model meanwhile.
SHADOW_BATCH_WINDOWS = 32
# How long stop() waits for a check in progress (a download, a shadow test).
STOP_TIMEOUT_S = 30.0

ModelListener = Callable[[ModelInfo], None]
StatusListener = Callable[[], None]


class UpdateResult(StrEnum):
    """What one check ended with."""

    UP_TO_DATE = "up_to_date"
    INSTALLED = "installed"
    REFUSED = "refused"
    RESTORED = "restored"
    UNAVAILABLE = "unavailable"


@dataclass(frozen=True)
class UpdateOutcome:
    """The result of one check, as the status reports it."""

    result: UpdateResult
    active_version: str
    version: str | None = None
    reason: str | None = None
    offline: bool = False
    at_utc: str = ""
    shadow: dict[str, Any] = field(default_factory=dict)

    def to_status(self) -> dict[str, Any]:
        """Return the ``model_update`` block of the gateway status."""
        data = asdict(self)
        data["result"] = self.result.value
        return data


def _utc_now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


class ModelManager:
    """Keep one gateway on the model version its roll-out plan names."""

    def __init__(
        self,
        gateway_id: str,
        root: Path,
        client: TufModelClient,
        *,
        model_name: str = "crash-detector",
        held_out: Callable[[], HeldOutWindows | None] | None = None,
        on_model: ModelListener | None = None,
        on_status: StatusListener | None = None,
        shipped: Callable[[], ModelInfo] = shipped_model,
        check_interval_s: float = 3600.0,
    ) -> None:
        """Set where models live, how to reach the repository, who to tell.

        Args:
            gateway_id: this gateway (canary selection, log lines).
            root: the models folder (slots, state; the client's cache may
                live below it too).
            client: the TUF client.
            model_name: the model family this gateway runs.
            held_out: returns the local held-out windows (None: none yet).
            on_model: called with each newly active model; it must load it
                (the agent's detector) and raise ``ModelError`` or
                ``ModelUpdateError`` when it cannot.
            on_status: called after every check (publish the status).
            shipped: the model used while no slot is active.
            check_interval_s: period of the background checks.
        """
        self.gateway_id = gateway_id
        self.client = client
        self.model_name = model_name
        self.slots = ModelSlots(root)
        self.held_out = held_out or (lambda: None)
        self.on_model = on_model
        self.on_status = on_status
        self._shipped = shipped
        self.check_interval_s = check_interval_s
        self.who = f"gateway {gateway_id}"
        self.last_outcome: UpdateOutcome | None = None
        # (active slot folder or None for shipped, its verified model info)
        self._active_cache: tuple[Path | None, ModelInfo] | None = None
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @classmethod
    def held_out_file(cls, path: Path | None) -> Callable[[], HeldOutWindows | None]:
        """Return a held-out source reading an ``.npz`` file at each check."""
        return lambda: None if path is None else load_held_out(path)

    # -- the active model ---------------------------------------------------

    def _open(self, slot: Slot) -> ModelInfo:
        try:
            info = load_model_info(slot.model, slot.metadata)
            CrashModelRunner(info.path, batch_windows=1)
        except ModelError as exc:
            raise ModelInstallError(f"{self.who}: model {slot.version}: {exc}") from exc
        return info

    def active_info(self) -> ModelInfo:
        """Return the verified active model, restoring the previous one if broken.

        Falls back to the shipped model when no installed slot loads. A slot
        is verified (SHA-256, LiteRT load) once per process and swap; the
        result is kept until the active slot changes.
        """
        slot = self.slots.active()
        cached = self._active_cache
        if cached is not None and cached[0] == (None if slot is None else slot.path):
            return cached[1]
        while slot is not None:
            try:
                info = self._open(slot)
                self._active_cache = (slot.path, info)
                return info
            except ModelInstallError as exc:
                _LOGGER.error(
                    "%s: active model does not load (%s); restoring the previous one",
                    self.who,
                    exc,
                )
                slot = self.slots.restore_previous()
                self._record(
                    UpdateOutcome(
                        UpdateResult.RESTORED,
                        active_version=slot.version if slot else "shipped",
                        reason=str(exc),
                        at_utc=_utc_now(),
                    )
                )
        info = self._shipped()
        self._active_cache = (None, info)
        return info

    @property
    def active_version(self) -> str:
        """Return the version the gateway runs now."""
        return self.active_info().version

    # -- one check ------------------------------------------------------------

    def check(self) -> UpdateOutcome:
        """Run one update check (see the module docstring); never raises.

        Errors end in an outcome: ``refused`` (verification, shadow test,
        install; the active model stays) or ``unavailable`` (unreachable and
        no cache that verifies).
        """
        with self._lock:
            active = self.active_info()
            try:
                outcome = self._check(active)
            except UpdateRefused as exc:
                outcome = self._refused(active, exc)
            except UpdateUnavailable as exc:
                _LOGGER.warning(
                    "%s: model update check not possible: %s; keeps running %s %s",
                    self.who,
                    exc,
                    active.name,
                    active.version,
                )
                outcome = UpdateOutcome(
                    UpdateResult.UNAVAILABLE,
                    active.version,
                    reason=str(exc),
                    offline=True,
                    at_utc=_utc_now(),
                )
            except ModelUpdateError as exc:
                outcome = self._refused(active, exc)
            self._record(outcome)
        if self.on_status is not None:
            try:
                self.on_status()
            except Exception:  # a status listener must not stop updates
                _LOGGER.exception("%s: status listener failed", self.who)
        return outcome

    def _refused(self, active: ModelInfo, exc: ModelUpdateError) -> UpdateOutcome:
        _LOGGER.error(
            "%s: model update refused: %s; keeps running %s %s",
            self.who,
            exc,
            active.name,
            active.version,
        )
        return UpdateOutcome(
            UpdateResult.REFUSED,
            active.version,
            version=exc.version,
            reason=str(exc),
            at_utc=_utc_now(),
            shadow=exc.shadow,
        )

    def _check(self, active: ModelInfo) -> UpdateOutcome:
        refresh = self.client.refresh()
        plan = self.client.plan(self.model_name)
        release = None if plan is None else plan.release_for(self.gateway_id)
        up_to_date = UpdateOutcome(
            UpdateResult.UP_TO_DATE,
            active.version,
            version=None if release is None else release.version,
            offline=refresh.offline,
            at_utc=_utc_now(),
        )
        if release is None:
            return up_to_date
        try:
            newer = parse_version(release.version) > parse_version(active.version)
        except RolloutDocError as exc:
            raise ModelInstallError(f"{self.who}: {exc}") from exc
        if not newer:
            return up_to_date
        refused = self.slots.read_state().get("refused", {})
        if release.version in refused:
            _LOGGER.debug(
                "%s: %s %s was refused before (%s); not tried again",
                self.who,
                self.model_name,
                release.version,
                refused[release.version],
            )
            return up_to_date
        return self._install(active, release, offline=refresh.offline)

    def _install(
        self, active: ModelInfo, release: ReleaseRef, *, offline: bool
    ) -> UpdateOutcome:
        version = release.version
        try:
            files = {
                MODEL_FILE: self.client.fetch(release.model),
                METADATA_FILE: self.client.fetch(release.metadata),
                REFERENCE_FILE: self.client.fetch(release.reference),
            }
        except UpdateRefused as exc:
            raise type(exc)(str(exc), version=version) from exc
        slot = self.slots.stage(version, files)
        try:
            candidate_info, candidate, reference = self._load_candidate(slot, release)
            shadow = run_shadow_test(
                candidate,
                candidate_info.metadata.decision,
                CrashModelRunner(active.path, batch_windows=SHADOW_BATCH_WINDOWS),
                active.metadata.decision,
                reference,
                self.held_out(),
            )
        except (ModelInstallError, ValueError, RuntimeError) as exc:
            self._discard(slot, version, str(exc))
            raise ModelInstallError(str(exc), version=version) from exc
        if not shadow.passed:
            reason = f"shadow test failed: {'; '.join(shadow.reasons)}"
            self._discard(slot, version, reason)
            raise ShadowTestFailed(
                f"{self.model_name} {version}: {reason}",
                version=version,
                shadow=shadow.figures,
            )

        self.slots.activate(slot)
        try:
            loaded = self._open(slot)
            if self.on_model is not None:
                self.on_model(loaded)
        except (ModelUpdateError, ModelError) as exc:
            previous = self.slots.restore_previous()
            self._remember_refused(version, f"does not load: {exc}")
            restored = self.active_info()
            if self.on_model is not None:
                self.on_model(restored)
            _LOGGER.error(
                "%s: %s %s does not load after the swap (%s); restored %s",
                self.who,
                self.model_name,
                version,
                exc,
                previous.version if previous else f"shipped {restored.version}",
            )
            return UpdateOutcome(
                UpdateResult.RESTORED,
                restored.version,
                version=version,
                reason=f"does not load: {exc}",
                offline=offline,
                at_utc=_utc_now(),
                shadow=shadow.figures,
            )
        self.slots.prune()
        _LOGGER.info(
            "%s: %s %s installed (was %s; shadow test: %d/%d reference crashes, "
            "%d held-out windows)%s",
            self.who,
            self.model_name,
            version,
            active.version,
            shadow.figures.get("reference_detected", 0),
            shadow.figures.get("reference_crashes", 0),
            shadow.figures.get("held_out_windows", 0),
            " from cached metadata, offline" if offline else "",
        )
        return UpdateOutcome(
            UpdateResult.INSTALLED,
            version,
            version=version,
            offline=offline,
            at_utc=_utc_now(),
            shadow=shadow.figures,
        )

    def _load_candidate(
        self, slot: Slot, release: ReleaseRef
    ) -> tuple[ModelInfo, CrashModelRunner, Any]:
        try:
            info = load_model_info(slot.model, slot.metadata)
        except ModelError as exc:
            raise ModelInstallError(
                f"{self.model_name} {release.version}: {exc}"
            ) from exc
        if info.version != release.version or info.name != self.model_name:
            raise ModelInstallError(
                f"{slot.metadata}: declares {info.name} {info.version}, the roll-out "
                f"plan {self.model_name} {release.version}"
            )
        try:
            runner = CrashModelRunner(info.path, batch_windows=SHADOW_BATCH_WINDOWS)
            reference = read_reference_crashes(
                slot.reference.read_bytes(), str(slot.reference)
            )
        except (ModelError, ReferenceFileError, OSError) as exc:
            raise ModelInstallError(
                f"{self.model_name} {release.version}: {exc}"
            ) from exc
        return info, runner, reference

    def _discard(self, slot: Slot, version: str, reason: str) -> None:
        active = self.slots.active()
        if active is None or active.path != slot.path:
            self.slots.prune()
        self._remember_refused(version, reason)

    def _remember_refused(self, version: str, reason: str) -> None:
        state = self.slots.read_state()
        refused = dict(state.get("refused", {}))
        refused[version] = reason
        self.slots.write_state({**state, "refused": refused})

    def _record(self, outcome: UpdateOutcome) -> None:
        self.last_outcome = outcome
        state = self.slots.read_state()
        self.slots.write_state({**state, "last_update": outcome.to_status()})

    # -- status -------------------------------------------------------------------

    def status_info(self) -> dict[str, Any]:
        """Return the status keys this manager supplies (version, last attempt)."""
        outcome = self.last_outcome
        if outcome is None:
            saved = self.slots.read_state().get("last_update")
            last = saved if isinstance(saved, dict) else None
        else:
            last = outcome.to_status()
        return {"model_version": self.active_version, "model_update": last}

    # -- background checks ----------------------------------------------------

    def on_inbound(self, message: InboundMessage) -> None:
        """Handle an MQTT message: an announcement of this model wakes a check."""
        if message.kind is not InboundKind.MODEL_ANNOUNCE:
            return
        if message.document.get("model_name") != self.model_name:
            return
        _LOGGER.info(
            "%s: %s %s announced; checking",
            self.who,
            self.model_name,
            message.document.get("version"),
        )
        self._wake.set()

    def request_check(self) -> None:
        """Ask the background thread for a check now."""
        self._wake.set()

    def start(self) -> None:
        """Start periodic checks in a background thread (first check at once)."""
        if self._thread is not None:
            raise RuntimeError(f"{self.who}: model manager already started")
        self._stop.clear()
        self._wake.set()
        self._thread = threading.Thread(
            target=self._run, name=f"modelmgr-{self.gateway_id}", daemon=True
        )
        self._thread.start()

    def stop(self, timeout_s: float = STOP_TIMEOUT_S) -> None:
        """Stop the background thread after the check in progress."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.check_interval_s)
            if self._stop.is_set():
                break
            self._wake.clear()
            self.check()
