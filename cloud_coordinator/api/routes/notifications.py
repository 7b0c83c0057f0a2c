"""``/api/v1/notifications/ws``: a user's notifications over a WebSocket.

Authentication is the API's bearer token, in the ``Authorization`` header
or, for browsers (which cannot set headers on a WebSocket), as the second
subprotocol: ``Sec-WebSocket-Protocol: suitlink.bearer, <token>`` (the
server then answers ``suitlink.bearer``). A missing or rejected token
closes the handshake with 1008 before anything is sent.

Each message is one JSON document (schema ``cloud-notification/1``)::

    {"schema": "cloud-notification/1", "id": "<uuid>",
     "type": "analytics_ready" | "crash_detected" | "raw_deletion_scheduled",
     "rider_id": "...", "created_at": "<ISO 8601>", "payload": {...}}

A user gets the notifications of their scope, the same as the REST API's:
a rider their own, a technician those of the professional riders assigned to
them, R&D and admins everyone's; notifications addressed to a role go to
that role only. Only committed notifications are sent (they are read from
the catalog's outbox). ``?after=<id>`` resumes after the last id a client
saw (every later notification in scope is sent first); without it only new
ones are sent. Clients drop repeats by ``id``.

Close codes: 1008 bad token; 4401 the token expired (reconnect with a new
one and ``after``); 4404 ``after`` names no notification; 4408 the client
read too slowly (reconnect with ``after``); 1011 the catalog failed.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections import OrderedDict
from typing import Any

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from starlette.concurrency import run_in_threadpool

from ...auth import Principal, Role, TokenRejected
from ...catalog import CatalogError, UserType
from ...catalog.outbox import Notification, NotificationAudience
from ...notify.hub import NotificationHub, Subscription
from ..services import ApiServices

__all__ = [
    "BEARER_SUBPROTOCOL",
    "NOTIFICATION_SCHEMA",
    "audience_of",
    "notification_document",
    "router",
]

_LOGGER = logging.getLogger(__name__)

NOTIFICATION_SCHEMA = "cloud-notification/1"
BEARER_SUBPROTOCOL = "suitlink.bearer"
# Rows per backlog read when a client resumes with ``after``.
BACKLOG_BATCH = 200
# How long a technician's rider lookups are trusted (assignment changes).
RIDER_CACHE_S = 60.0
# Ids remembered per connection to drop the overlap of backlog and live feed.
SENT_IDS = 5000
CLOSE_TOKEN_EXPIRED = 4401
CLOSE_UNKNOWN_AFTER = 4404
CLOSE_TOO_SLOW = 4408

router = APIRouter(tags=["notifications"])


def audience_of(principal: Principal) -> NotificationAudience:
    """Return whose notifications ``principal`` reads."""
    if principal.role is Role.RIDER:
        return NotificationAudience(principal.role.value, rider_id=principal.subject)
    if principal.role is Role.TECHNICIAN:
        return NotificationAudience(
            principal.role.value, technician_id=principal.subject
        )
    return NotificationAudience(principal.role.value)


def notification_document(notification: Notification) -> dict[str, Any]:
    """Return the message sent for a notification."""
    return {
        "schema": NOTIFICATION_SCHEMA,
        "id": notification.notification_id,
        "type": notification.type.value,
        "rider_id": notification.rider_id,
        "created_at": notification.created_at.isoformat(),
        "payload": dict(notification.payload),
    }


def _token_of(websocket: WebSocket) -> tuple[str | None, str | None]:
    """Return the bearer token and the subprotocol to answer with."""
    header = websocket.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip(), None
    offered = [
        item.strip()
        for item in websocket.headers.get("sec-websocket-protocol", "").split(",")
    ]
    if len(offered) >= 2 and offered[0] == BEARER_SUBPROTOCOL and offered[1]:
        return offered[1], BEARER_SUBPROTOCOL
    return None, None


def _hub(websocket: WebSocket, services: ApiServices) -> NotificationHub:
    state = websocket.app.state
    hub: NotificationHub | None = getattr(state, "notification_hub", None)
    if hub is None:
        hub = NotificationHub(services.catalog)
        state.notification_hub = hub
    return hub


class _SentIds:
    """The ids sent on one connection lately (bounded)."""

    def __init__(self, capacity: int = SENT_IDS) -> None:
        self._ids: OrderedDict[str, None] = OrderedDict()
        self._capacity = capacity

    def add(self, notification_id: str) -> None:
        self._ids[notification_id] = None
        if len(self._ids) > self._capacity:
            self._ids.popitem(last=False)

    def __contains__(self, notification_id: object) -> bool:
        return notification_id in self._ids


class _Scope:
    """Decide whether a notification from the hub is for this connection."""

    def __init__(self, services: ApiServices, principal: Principal) -> None:
        self._services = services
        self._principal = principal
        self._riders: dict[str, tuple[bool, float]] = {}

    async def _technician_sees(self, rider_id: str) -> bool:
        now = asyncio.get_running_loop().time()
        cached = self._riders.get(rider_id)
        if cached is not None and now - cached[1] < RIDER_CACHE_S:
            return cached[0]
        rider = await run_in_threadpool(self._services.catalog.get_rider, rider_id)
        allowed = (
            rider is not None
            and rider.user_type is UserType.PROFESSIONAL
            and rider.technician_id == self._principal.subject
        )
        self._riders[rider_id] = (allowed, now)
        return allowed

    async def admits(self, notification: Notification) -> bool:
        principal = self._principal
        if notification.role is not None and notification.role != principal.role.value:
            return False
        if notification.rider_id is None or principal.role.reads_everything:
            return True
        if principal.role is Role.RIDER:
            return notification.rider_id == principal.subject
        return await self._technician_sees(notification.rider_id)


async def _send_backlog(
    websocket: WebSocket,
    services: ApiServices,
    audience: NotificationAudience,
    after_seq: int,
    sent: _SentIds,
) -> None:
    while True:
        batch = await run_in_threadpool(
            services.catalog.list_notifications,
            audience,
            after_seq=after_seq,
            limit=BACKLOG_BATCH,
        )
        for notification in batch:
            await websocket.send_json(notification_document(notification))
            sent.add(notification.notification_id)
        if len(batch) < BACKLOG_BATCH:
            return
        after_seq = batch[-1].seq


async def _stream(
    websocket: WebSocket,
    subscription: Subscription,
    scope: _Scope,
    sent: _SentIds,
    expires_at: dt.datetime,
) -> tuple[int, str] | None:
    """Send notifications until the client leaves; return a close code, reason."""
    receiver = asyncio.ensure_future(websocket.receive())
    try:
        while True:
            remaining_s = (expires_at - dt.datetime.now(dt.UTC)).total_seconds()
            if remaining_s <= 0:
                return CLOSE_TOKEN_EXPIRED, "token expired; reconnect with after"
            if subscription.overflowed:
                return CLOSE_TOO_SLOW, "too slow; reconnect with after"
            getter = asyncio.ensure_future(subscription.queue.get())
            done, _ = await asyncio.wait(
                {receiver, getter},
                timeout=min(remaining_s, 30.0),
                return_when=asyncio.FIRST_COMPLETED,
            )
            if receiver in done:
                getter.cancel()
                message = receiver.result()
                if message["type"] == "websocket.disconnect":
                    return None
                receiver = asyncio.ensure_future(websocket.receive())
            if getter not in done:
                getter.cancel()
                continue
            notification = getter.result()
            if notification.notification_id in sent:
                continue
            if await scope.admits(notification):
                await websocket.send_json(notification_document(notification))
                sent.add(notification.notification_id)
    finally:
        receiver.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await receiver


@router.websocket("/api/v1/notifications/ws")
async def notifications_ws(websocket: WebSocket, after: str | None = None) -> None:
    """Stream the caller's notifications; see the module docstring."""
    services: ApiServices = websocket.app.state.services
    token, subprotocol = _token_of(websocket)
    try:
        if token is None:
            raise TokenRejected("a bearer token is required")
        principal = services.verifier.verify(token)
    except TokenRejected as exc:
        await websocket.close(code=1008, reason=str(exc)[:120])
        return
    # Subscribe before accepting: whatever commits after the client sees the
    # handshake complete reaches it.
    hub = _hub(websocket, services)
    subscription = await hub.subscribe()
    sent = _SentIds()
    close: tuple[int, str] | None = None
    try:
        await websocket.accept(subprotocol=subprotocol)
        if after is not None:
            seq = await run_in_threadpool(services.catalog.notification_seq, after)
            if seq is None:
                close = (CLOSE_UNKNOWN_AFTER, "unknown notification id in after")
            else:
                await _send_backlog(
                    websocket, services, audience_of(principal), seq, sent
                )
        if close is None:
            close = await _stream(
                websocket,
                subscription,
                _Scope(services, principal),
                sent,
                principal.expires_at,
            )
    except WebSocketDisconnect:
        close = None
    except CatalogError as exc:
        _LOGGER.error("notifications: %s: catalog failed: %s", principal.subject, exc)
        close = (1011, "catalog unavailable; reconnect with after")
    finally:
        hub.unsubscribe(subscription)
    if close is not None:
        with contextlib.suppress(RuntimeError, WebSocketDisconnect):
            await websocket.close(code=close[0], reason=close[1])
