"""Talk to the SuperLink's Control API: start and follow runs, register gateways.

This is what ``flwr run``, ``flwr ls`` and ``flwr supernode register`` do,
without their interactive output and without a Flower configuration file:
the coordinator's ``[fl]`` section names the SuperLink's address and its CA
certificate (TLS is on unless ``insecure = true``, meant for loopback tests).

Every request is bounded by Flower's HTTP client timeouts; a refused or
unreachable SuperLink becomes :class:`~cloud_coordinator.fl.errors.ControlError`
naming the address and what to check.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import ControlError
from .fab import AppBundle

__all__ = ["ControlClient", "RunStatus"]

_LOGGER = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunStatus:
    """The SuperLink's view of one run (``status`` as ``flwr ls`` shows it)."""

    run_id: int
    status: str
    details: str

    @property
    def finished(self) -> bool:
        """Return whether the SuperLink says the run ended."""
        return self.status.startswith("finished")


class ControlClient:
    """A Control API client for one SuperLink; use as a context manager."""

    def __init__(
        self,
        address: str,
        *,
        insecure: bool = False,
        root_certificates: Path | None = None,
    ) -> None:
        """Connect to ``address`` (host:port) over TLS unless ``insecure``.

        Raises:
            ControlError: TLS without a CA file, or the CA file is unreadable.
        """
        from flwr.supercore.control.control_http_client import ControlHttpClient
        from flwr.supercore.interceptors.http.runtime_version import (
            RuntimeVersionHttpInterceptor,
        )

        self.address = address
        certificates: bytes | None = None
        if not insecure:
            if root_certificates is None:
                raise ControlError(
                    f"SuperLink {address}: TLS needs [fl] root_certificates "
                    "(the CA that signed the SuperLink's certificate)"
                )
            try:
                certificates = Path(root_certificates).read_bytes()
            except OSError as exc:
                raise ControlError(
                    f"SuperLink {address}: cannot read CA file {root_certificates}: "
                    f"{exc}"
                ) from exc
        self._client = ControlHttpClient.from_server_address(
            server_address=address,
            insecure=insecure,
            root_certificates=certificates,
            interceptors=[
                RuntimeVersionHttpInterceptor(component_name="cloud-coordinator")
            ],
        )

    def __enter__(self) -> ControlClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the HTTP connection."""
        self._client.close()

    def _call(self, what: str, method: Any, request: Any) -> Any:
        try:
            return method(request)
        except Exception as exc:  # Flower raises httpx and its own errors.
            raise ControlError(
                f"SuperLink {self.address}: {what} failed: {type(exc).__name__}: "
                f"{exc}. Check that the SuperLink runs, its Control API address "
                "and, with TLS, the CA certificate."
            ) from exc

    def start_run(self, bundle: AppBundle, overrides: dict[str, Any]) -> int:
        """Submit the app with run-config ``overrides``; return the run id.

        Raises:
            ControlError: the SuperLink refused the run or cannot be reached.
        """
        from flwr.common.serde import fab_to_proto, user_config_to_proto
        from flwr.proto.control_pb2 import StartRunRequest
        from flwr.supercore.fab import Fab

        request = StartRunRequest(
            fab=fab_to_proto(Fab(bundle.sha256, bundle.content, {})),
            override_config=user_config_to_proto(overrides),
            federation="",
        )
        response = self._call("StartRun", self._client.StartRun, request)
        if not response.HasField("run_id"):
            raise ControlError(f"SuperLink {self.address}: StartRun returned no run id")
        _LOGGER.info("SuperLink %s: run %d started", self.address, response.run_id)
        return int(response.run_id)

    def run_status(self, run_id: int) -> RunStatus:
        """Return the SuperLink's status of ``run_id``.

        Raises:
            ControlError: unknown run or SuperLink unreachable.
        """
        from flwr.common.serde import run_from_proto
        from flwr.proto.control_pb2 import ListRunsRequest

        response = self._call(
            "ListRuns", self._client.ListRuns, ListRunsRequest(run_id=run_id)
        )
        if run_id not in response.run_dict:
            raise ControlError(f"SuperLink {self.address}: no run {run_id}")
        run = run_from_proto(response.run_dict[run_id])
        status = run.status.status
        if run.status.sub_status:
            status = f"{status}:{run.status.sub_status}"
        return RunStatus(run_id, status, run.status.details)

    def stop_run(self, run_id: int) -> None:
        """Ask the SuperLink to stop ``run_id``.

        Raises:
            ControlError: the SuperLink refused or cannot be reached.
        """
        from flwr.proto.control_pb2 import StopRunRequest

        self._call("StopRun", self._client.StopRun, StopRunRequest(run_id=run_id))

    def register_node(self, public_key_file: Path, name: str = "") -> int:
        """Register a gateway's SuperNode public key (OpenSSH EC); return its id.

        Raises:
            ControlError: the key is unreadable, not a NIST EC key, or refused.
        """
        from flwr.cli.supernode.register import try_load_public_key
        from flwr.proto.control_pb2 import RegisterNodeRequest

        try:
            public_key = try_load_public_key(Path(public_key_file))
        except Exception as exc:
            raise ControlError(f"{public_key_file}: not a usable key: {exc}") from exc
        response = self._call(
            "RegisterNode",
            self._client.RegisterNode,
            RegisterNodeRequest(public_key=public_key, name=name),
        )
        return int(response.node_id)
