"""Log handlers for the Flower app processes (ServerApp and ClientApp).

Flower starts each app in a process of its own (``flwr-serverapp``,
``flwr-clientapp``) whose entry point is Flower's, not ours, so nothing
configures our packages' loggers there. The app functions call
:func:`configure_app_logging` once: INFO lines of the named packages go to
stderr, which Flower forwards to the SuperLink's or SuperNode's log.
"""

from __future__ import annotations

import logging

__all__ = ["configure_app_logging"]

_FORMAT = "%(levelname)s %(name)s: %(message)s"


def configure_app_logging(*packages: str) -> None:
    """Send INFO and above of ``packages`` to stderr, once per process."""
    for package in packages:
        logger = logging.getLogger(package)
        if logger.handlers:
            continue
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter(_FORMAT))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False
