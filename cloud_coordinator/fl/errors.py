"""Errors of the coordinator's federated-learning side.

::

    FederatedRunError
    ├── RunConfigError     a run-config key or an ``[fl]`` setting is wrong
    ├── QuorumError        too few eligible gateways within the quorum wait
    └── ControlError       the SuperLink's Control API refused or is unreachable
"""

from __future__ import annotations

__all__ = ["ControlError", "FederatedRunError", "QuorumError", "RunConfigError"]


class FederatedRunError(Exception):
    """Base of the coordinator's federated-learning errors."""


class RunConfigError(FederatedRunError):
    """A run-config key or an ``[fl]`` configuration value is wrong."""


class QuorumError(FederatedRunError):
    """Too few eligible gateways answered within the quorum wait."""


class ControlError(FederatedRunError):
    """The SuperLink's Control API refused a request or cannot be reached."""
