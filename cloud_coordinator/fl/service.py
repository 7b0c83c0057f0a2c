"""Federated learning for the CLI and the API: runs, reports, riders' consent.

:class:`FederatedService` holds what both need from the ``[fl]`` section
(the SuperLink's address and CA, the app folder, run defaults) and works on
a catalog it is given.

**Training consent.** A rider's choice is stored in the catalog first, then
published as a ``training_consent`` command (``gateway-command/1``, QoS 1)
to every gateway that uploaded the rider's data (``objects.gateway_id``),
on ``gateways/{gateway_id}/commands``. The choice is marked published only
when every such gateway's command was acknowledged by the broker; an
unpublished choice is sent again by the next :meth:`publish_pending_consents`
(the CLI's ``fl consent --resend``), and a gateway applies a choice older
than the one it holds as a no-op, so re-sending is harmless.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cloud_coordinator.broker.errors import BrokerError
from cloud_coordinator.broker.topics import commands_topic
from cloud_coordinator.catalog import Catalog
from cloud_coordinator.catalog.fl_records import FederatedRun, TrainingConsent
from cloud_coordinator.config import BrokerConfig, CoordinatorConfig
from cloud_coordinator.crashes.verdicts import CommandPublisher

from .control import ControlClient
from .runs import RunReport, RunRequest, run_report, start_run

__all__ = ["COMMAND_SCHEMA", "ConsentOutcome", "FederatedService", "consent_command"]

_LOGGER = logging.getLogger(__name__)

COMMAND_SCHEMA = "gateway-command/1"


@dataclass(frozen=True)
class ConsentOutcome:
    """A stored choice and whether every gateway of the rider was told."""

    consent: TrainingConsent
    gateways: list[str]
    published: bool
    reason: str | None = None


def consent_command(consent: TrainingConsent) -> dict[str, Any]:
    """Return the ``training_consent`` gateway command of a stored choice."""
    return {
        "schema": COMMAND_SCHEMA,
        "command_id": consent.command_id,
        "type": "training_consent",
        "rider_id": consent.rider_id,
        "opted_out": consent.opted_out,
        "issued_at": consent.issued_at.isoformat(),
    }


@dataclass(frozen=True)
class FederatedService:
    """Start and follow runs, record riders' choices; see the module docstring."""

    superlink: str
    insecure: bool
    root_certificates: Path | None
    app_dir: Path | None
    base_config: dict[str, Any]

    @classmethod
    def from_config(cls, config: CoordinatorConfig) -> FederatedService:
        """Build the service from the ``[fl]`` and ``[catalog]`` sections."""
        fl = config.fl
        out_dir = config.path(fl.out_dir)
        initial = config.path(fl.initial_model)
        base: dict[str, Any] = {
            "catalog": config.catalog_url,
            "catalog-schema": config.catalog.schema,
            "out-dir": "" if out_dir is None else str(out_dir),
            "initial-model": "" if initial is None else str(initial),
            "round-timeout-s": fl.round_timeout_s,
            "quorum-wait-s": fl.quorum_wait_s,
            "query-timeout-s": fl.query_timeout_s,
        }
        return cls(
            superlink=fl.superlink,
            insecure=fl.insecure,
            root_certificates=config.path(fl.root_certificates),
            app_dir=config.path(fl.app_dir),
            base_config=base,
        )

    def control(self) -> ControlClient:
        """Return a Control API client of the SuperLink (close it after use).

        Raises:
            ControlError: TLS without a CA file, or an unreadable CA file.
        """
        return ControlClient(
            self.superlink,
            insecure=self.insecure,
            root_certificates=self.root_certificates,
        )

    def start(
        self, catalog: Catalog, request: RunRequest, *, requested_by: str
    ) -> FederatedRun:
        """Record and submit a run (see :func:`.runs.start_run`).

        Raises:
            RunConfigError: a setting is wrong.
            ControlError: the SuperLink refused or cannot be reached.
        """
        with self.control() as control:
            return start_run(
                catalog,
                control,
                request,
                requested_by=requested_by,
                base_config=self.base_config,
                app_dir=self.app_dir,
            )

    @staticmethod
    def report(catalog: Catalog, run_key: str) -> RunReport | None:
        """Return a run and its rounds, None if unknown."""
        return run_report(catalog, run_key)

    # -- training consent ------------------------------------------------------

    @staticmethod
    def set_consent(
        catalog: Catalog,
        publisher: CommandPublisher | None,
        broker: BrokerConfig,
        rider_id: str,
        *,
        opted_out: bool,
        now: dt.datetime | None = None,
    ) -> ConsentOutcome:
        """Store a rider's choice and send it to the rider's gateways.

        Raises:
            InvalidRecord: a malformed rider id.
        """
        consent = catalog.set_training_consent(
            TrainingConsent(
                rider_id=rider_id,
                opted_out=opted_out,
                command_id=str(uuid.uuid4()),
                issued_at=now or dt.datetime.now(dt.UTC),
            )
        )
        _LOGGER.info(
            "rider %s: training %s (command %s)",
            rider_id,
            "opted out" if opted_out else "allowed",
            consent.command_id,
        )
        return FederatedService.publish_consent(catalog, publisher, broker, consent)

    @staticmethod
    def publish_consent(
        catalog: Catalog,
        publisher: CommandPublisher | None,
        broker: BrokerConfig,
        consent: TrainingConsent,
    ) -> ConsentOutcome:
        """Publish a stored choice to the rider's gateways; mark it when all acked."""
        gateways = catalog.rider_gateways(consent.rider_id)
        if publisher is None:
            return ConsentOutcome(consent, gateways, False, "no broker link configured")
        failures = []
        for gateway_id in gateways:
            topic = commands_topic(broker, gateway_id)
            try:
                publisher.publish(topic, consent_command(consent), qos=1)
            except BrokerError as exc:
                failures.append(f"{topic}: {exc}")
        if failures:
            reason = "; ".join(failures)
            _LOGGER.warning(
                "rider %s: training choice %s not yet on every gateway: %s",
                consent.rider_id,
                consent.command_id,
                reason,
            )
            return ConsentOutcome(consent, gateways, False, reason)
        catalog.mark_consent_published(consent.rider_id, consent.command_id)
        return ConsentOutcome(consent, gateways, True)

    @staticmethod
    def publish_pending_consents(
        catalog: Catalog, publisher: CommandPublisher | None, broker: BrokerConfig
    ) -> list[ConsentOutcome]:
        """Send every choice not yet acknowledged by all its gateways again."""
        return [
            FederatedService.publish_consent(catalog, publisher, broker, consent)
            for consent in catalog.list_unpublished_consents()
        ]
