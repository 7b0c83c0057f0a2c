"""Follow a canary roll-out on the gateways' status and promote or halt it.

Gateways publish their retained status (``gateways/{id}/status``, schema
``gateway-status/1``) with ``model_version`` (the model they run) and
``model_update`` (their last update attempt: version, result, reason, shadow
test figures). :class:`CanaryTracker` reads those for the plan's canaries:

- the gateways the plan lists, and every gateway seen whose id the plan's
  hash share selects;
- a canary is *healthy* when it is online and runs the candidate;
- a canary has *failed* when it refused the candidate or restored its
  previous model after it (``model_update.result`` ``refused``/``restored``
  for the candidate's version).

The verdict is ``failed`` as soon as one canary failed, ``healthy`` when
every listed canary and every selected gateway seen is healthy and at least
``min_canaries`` are, else ``waiting``. :func:`watch_canaries` subscribes to
the statuses, waits for a verdict and then promotes (stage ``complete``) or
halts (stage ``halted``: everyone stays on the stable release) through the
publisher, which signs the new plan and announces it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

from edge_agent.modelmgr.rollout import RolloutPlan, Stage

from .errors import RolloutError
from .publish import ModelPublisher

__all__ = [
    "CanaryTracker",
    "CanaryVerdict",
    "StatusClient",
    "Verdict",
    "status_subscription",
    "watch_canaries",
]

_LOGGER = logging.getLogger(__name__)

_FAILED_RESULTS = ("refused", "restored")


class StatusClient(Protocol):
    """What watching needs of an MQTT client (``CloudMqttClient`` fits)."""

    def connect(self, timeout_s: float = ...) -> None:
        """Connect and start delivering subscribed messages."""
        ...

    def close(self) -> None:
        """Disconnect."""
        ...


class Verdict(StrEnum):
    """Where the canaries stand."""

    WAITING = "waiting"
    HEALTHY = "healthy"
    FAILED = "failed"


@dataclass(frozen=True)
class CanaryVerdict:
    """The verdict and who contributed to it."""

    verdict: Verdict
    canaries: tuple[str, ...]
    healthy: tuple[str, ...]
    failed: dict[str, str] = field(default_factory=dict)

    def describe(self) -> str:
        """Return one line for logs and plan notes."""
        text = (
            f"{len(self.healthy)}/{len(self.canaries)} canaries healthy "
            f"({', '.join(self.healthy) or 'none'})"
        )
        if self.failed:
            text += "; failed: " + "; ".join(
                f"{gw}: {why}" for gw, why in sorted(self.failed.items())
            )
        return text


def status_subscription(gateways_prefix: str) -> str:
    """Return the topic filter of every gateway's status."""
    return f"{gateways_prefix}/+/status"


class CanaryTracker:
    """Collect gateway statuses and judge a plan's canaries (thread-safe)."""

    def __init__(self, plan: RolloutPlan, *, min_canaries: int = 1) -> None:
        """Judge the canaries of ``plan``; ``min_canaries`` must report healthy."""
        if plan.stage is not Stage.CANARY:
            raise RolloutError(
                f"{plan.model_name} {plan.candidate.version}: roll-out is "
                f"{plan.stage.value}, not canary"
            )
        self.plan = plan
        self.min_canaries = max(1, min_canaries)
        self._statuses: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()

    def observe(self, gateway_id: str, status: dict[str, Any]) -> None:
        """Take the newest status document of ``gateway_id``."""
        with self._lock:
            self._statuses[gateway_id] = status

    def verdict(self) -> CanaryVerdict:
        """Return the verdict on what was observed so far."""
        version = self.plan.candidate.version
        with self._lock:
            statuses = dict(self._statuses)
        listed = set(self.plan.canary.gateways)
        selected = {gw for gw in statuses if self.plan.canary.selects(gw)}
        canaries = sorted(listed | selected)
        healthy: list[str] = []
        failed: dict[str, str] = {}
        for gateway in canaries:
            status = statuses.get(gateway)
            if status is None:
                continue
            update = status.get("model_update")
            if (
                isinstance(update, dict)
                and update.get("version") == version
                and update.get("result") in _FAILED_RESULTS
            ):
                failed[gateway] = f"{update.get('result')}: {update.get('reason')}"
            elif (
                status.get("state") == "online"
                and status.get("model_version") == version
            ):
                healthy.append(gateway)
        if failed:
            verdict = Verdict.FAILED
        elif len(healthy) == len(canaries) and len(healthy) >= self.min_canaries:
            verdict = Verdict.HEALTHY
        else:
            verdict = Verdict.WAITING
        return CanaryVerdict(verdict, tuple(canaries), tuple(healthy), failed)


def watch_canaries(
    publisher: ModelPublisher,
    client_factory: Callable[..., StatusClient],
    *,
    gateways_prefix: str = "gateways",
    min_canaries: int = 1,
    timeout_s: float = 3600.0,
    poll_s: float = 0.5,
) -> CanaryVerdict:
    """Wait for the canaries of the current plan; promote or halt it.

    Args:
        publisher: signs and announces the new plan (its announcer should be
            the same broker).
        client_factory: called with ``handler`` and ``subscriptions``
            keyword arguments, returns a connected-on-``connect()`` client
            (``CloudMqttClient`` with ``functools.partial`` of its config).
        gateways_prefix: the status topics' prefix.
        min_canaries: healthy canaries needed to promote.
        timeout_s: give up (verdict ``waiting``, nothing changed) after this.
        poll_s: how often the verdict is looked at.

    Raises:
        RolloutError: there is no canary roll-out to watch.
        BrokerError: the broker cannot be reached.
    """
    from edge_agent.mqtt.errors import MqttPayloadError
    from edge_agent.mqtt.status import parse_status

    plan = publisher.current_plan()
    if plan is None:
        raise RolloutError(f"{publisher.model_name}: nothing published yet")
    tracker = CanaryTracker(plan, min_canaries=min_canaries)
    changed = threading.Event()

    def on_message(message: Any) -> None:
        if not message.payload:
            return
        try:
            status = parse_status(message.topic, message.payload)
        except MqttPayloadError as exc:
            _LOGGER.warning("canary watch: status ignored: %s", exc)
            return
        tracker.observe(str(status["gateway_id"]), status)
        changed.set()

    client = client_factory(
        handler=on_message,
        subscriptions=[(status_subscription(gateways_prefix), 1)],
    )
    client.connect()
    try:
        _LOGGER.info(
            "%s %s: watching canaries (%s, share %.2f)",
            plan.model_name,
            plan.candidate.version,
            ", ".join(plan.canary.gateways) or "none listed",
            plan.canary.share,
        )
        deadline = time.monotonic() + timeout_s
        verdict = tracker.verdict()
        while verdict.verdict is Verdict.WAITING:
            remaining_s = deadline - time.monotonic()
            if remaining_s <= 0:
                _LOGGER.warning(
                    "%s %s: no canary verdict in %.0f s: %s",
                    plan.model_name,
                    plan.candidate.version,
                    timeout_s,
                    verdict.describe(),
                )
                return verdict
            changed.wait(min(poll_s, remaining_s))
            changed.clear()
            verdict = tracker.verdict()
    finally:
        client.close()
    stage = Stage.COMPLETE if verdict.verdict is Verdict.HEALTHY else Stage.HALTED
    publisher.set_stage(stage, verdict.describe())
    return verdict
