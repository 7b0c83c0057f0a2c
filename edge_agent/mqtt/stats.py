"""Counters of one gateway's MQTT link, for metrics and tests."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["LinkStats"]


@dataclass
class LinkStats:
    """Counters written by the link thread (read-only outside it).

    ``links_lost`` counts connections that ended other than by stop: one per
    reconnect, however many disconnect notifications led to it.
    """

    link_threads_started: int = 0
    connect_attempts: int = 0
    connections: int = 0
    links_lost: int = 0
    reconnect_requests: int = 0
    events_sent: int = 0
    events_delivered: int = 0
    events_refused: int = 0
    events_set_aside: int = 0
    inbound_accepted: int = 0
    inbound_rejected: int = 0
    handler_errors: int = 0
    status_published: int = 0
