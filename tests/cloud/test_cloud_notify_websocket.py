"""The notification WebSocket: token, scope, resume, only committed notices."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from cloud_api_env import ApiEnv, make_api_env
from cloud_helpers import ManualClock
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from cloud_coordinator.api.routes.notifications import BEARER_SUBPROTOCOL
from cloud_coordinator.catalog import Catalog, Rider, UserType
from cloud_coordinator.notify import record_notification
from edge_agent.upload import LocalDirStore

PATH = "/api/v1/notifications/ws"


@pytest.fixture
def env(
    any_catalog: Catalog, local_store: LocalDirStore, clock: ManualClock
) -> Iterator[ApiEnv]:
    any_catalog.upsert_rider(Rider("r1", UserType.PRIVATE))
    any_catalog.upsert_rider(Rider("r2", UserType.PRIVATE))
    any_catalog.upsert_rider(Rider("p1", UserType.PROFESSIONAL, "extended", "t1"))
    api = make_api_env(any_catalog, local_store, clock)
    with api.client:
        yield api


def _notify(env: ApiEnv, rider: str | None, n: int, **kwargs: Any) -> str:
    return record_notification(
        env.catalog,
        type=kwargs.pop("type", "analytics_ready"),
        payload={"n": n, "log_id": f"log-{n}"},
        rider_id=rider,
        **kwargs,
    )


def _connect(client: TestClient, token: str, query: str = "") -> Any:
    return client.websocket_connect(
        PATH + query, headers={"Authorization": f"Bearer {token}"}
    )


def test_notify_ws_sends_the_callers_new_notifications_only(env: ApiEnv) -> None:
    old = _notify(env, "r1", 0)
    with _connect(env.client, env.token("r1", "rider")) as ws:
        # Written after the connection opened; another rider's is not sent.
        _notify(env, "r2", 1)
        first = _notify(env, "r1", 2, type="crash_detected")
        _notify(env, None, 3, role="rnd")
        last = _notify(env, "r1", 4)
        got = [ws.receive_json(), ws.receive_json()]
    assert [item["id"] for item in got] == [first, last]
    assert old not in {item["id"] for item in got}
    assert got[0]["schema"] == "cloud-notification/1"
    assert got[0]["type"] == "crash_detected"
    assert got[0]["rider_id"] == "r1"
    assert got[0]["payload"] == {"n": 2, "log_id": "log-2"}


def test_notify_ws_scope_of_technician_and_rnd(env: ApiEnv) -> None:
    with (
        _connect(env.client, env.token("t1", "technician")) as tech,
        _connect(env.client, env.token("rnd-1", "rnd")) as rnd,
    ):
        _notify(env, "r1", 1)
        mine = _notify(env, "p1", 2)
        role = _notify(env, None, 3, role="rnd")
        assert tech.receive_json()["id"] == mine
        assert [rnd.receive_json()["payload"]["n"] for _ in range(3)] == [1, 2, 3]
        assert role


def test_notify_ws_resumes_after_the_last_seen_id(env: ApiEnv) -> None:
    ids = [_notify(env, "r1", n) for n in range(4)]
    _notify(env, "r2", 9)
    with _connect(env.client, env.token("r1", "rider"), f"?after={ids[1]}") as ws:
        got = [ws.receive_json()["id"] for _ in range(2)]
        later = _notify(env, "r1", 5)
        got.append(ws.receive_json()["id"])
    assert got == [ids[2], ids[3], later]


def test_notify_ws_token_in_subprotocol(env: ApiEnv) -> None:
    token = env.token("r1", "rider")
    with env.client.websocket_connect(
        PATH, subprotocols=[BEARER_SUBPROTOCOL, token]
    ) as ws:
        assert ws.accepted_subprotocol == BEARER_SUBPROTOCOL
        sent = _notify(env, "r1", 1)
        assert ws.receive_json()["id"] == sent


@pytest.mark.parametrize("token", ["", "not-a-jwt", "tampered"])
def test_notify_ws_refuses_bad_tokens(env: ApiEnv, token: str) -> None:
    if token == "tampered":
        good = env.token("r1", "rider")
        token = good[:-4] + ("AAAA" if not good.endswith("AAAA") else "BBBB")
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    with (
        pytest.raises(WebSocketDisconnect) as refused,
        env.client.websocket_connect(PATH, headers=headers) as ws,
    ):
        ws.receive_json()
    assert refused.value.code == 1008


def test_notify_ws_unknown_after_closes_4404(env: ApiEnv) -> None:
    with (
        _connect(env.client, env.token("r1", "rider"), "?after=no-such-id") as ws,
        pytest.raises(WebSocketDisconnect) as closed,
    ):
        ws.receive_json()
    assert closed.value.code == 4404


def test_notify_ws_closes_when_the_token_expires(env: ApiEnv) -> None:
    with (
        _connect(env.client, env.issuer.mint("r1", "rider", 2)) as ws,
        pytest.raises(WebSocketDisconnect) as closed,
    ):
        ws.receive_json()
    assert closed.value.code == 4401
