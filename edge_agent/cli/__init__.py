"""``edge-agent``: the gateway agent's command line (run, demo, ingest, status)."""

from .main import main

__all__ = ["main"]
