"""Long-poll transport (section 9, scenario 49) against uvicorn with plain HTTP."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator

import httpx
import orjson
import pytest

from relaygate.channels import Endpoint
from tests.channels.support import EndpointFactory, RoomChannel, serve


@pytest.fixture
async def lp(make_endpoint: EndpointFactory) -> AsyncIterator[tuple[Endpoint, httpx.AsyncClient]]:
    endpoint = make_endpoint(longpoll=True, longpoll_window=0.3, idle_timeout=0.2)
    async with serve(endpoint) as url:
        async with httpx.AsyncClient(base_url=url.replace("ws://", "http://"), timeout=5) as http:
            yield endpoint, http


async def open_session(http: httpx.AsyncClient, query: str = "vsn=2.0.0") -> str:
    response = await http.get(f"/socket/longpoll?{query}")
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == "*"
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["status"] == 410 and body["messages"] == []
    token: str = body["token"]
    return token


async def test_handshake_join_poll_and_idle_poll_scenario_49(lp: tuple[Endpoint, httpx.AsyncClient]) -> None:
    endpoint, http = lp
    token = await open_session(http)
    join = b'["4","4","room:lp","phx_join",{}]\n[null,"5","phoenix","heartbeat",{}]'
    posted = await http.post(f"/socket/longpoll?vsn=2.0.0&token={token}", content=join)
    assert posted.json() == {"status": 200}
    body = (await http.get(f"/socket/longpoll?vsn=2.0.0&token={token}")).json()
    assert body["status"] == 200 and body["token"] == token
    frames = [orjson.loads(m) for m in body["messages"]]
    assert ["4", "4", "room:lp", "phx_reply", {"status": "ok", "response": {}}] in frames
    assert [None, "5", "phoenix", "phx_reply", {"status": "ok", "response": {}}] in frames
    for _ in range(2):  # polls keep the session alive beyond the WebSocket idle timeout (0.2 s)
        idle = (await http.get(f"/socket/longpoll?vsn=2.0.0&token={token}")).json()
        assert idle == {"status": 204, "token": token, "messages": []}
    await endpoint.broadcast("room:lp", "e", {"x": 1})
    body = (await http.get(f"/socket/longpoll?vsn=2.0.0&token={token}")).json()
    assert [orjson.loads(m) for m in body["messages"]] == [[None, None, "room:lp", "e", {"x": 1}]]


async def test_binary_line_is_fed_as_a_binary_push(lp: tuple[Endpoint, httpx.AsyncClient]) -> None:
    _, http = lp
    token = await open_session(http)
    await http.post(f"/socket/longpoll?token={token}", content=b'["3","3","room:1","phx_join",{}]')
    binary = base64.b64encode(bytes([0, 1, 1, 6, 4]) + b"34room:1ping" + b"\x01")
    assert (await http.post(f"/socket/longpoll?token={token}", content=binary)).json() == {"status": 200}
    frames = (await http.get(f"/socket/longpoll?token={token}")).json()["messages"]
    assert len(frames) == 1  # the join reply; the binary reply cannot travel as a JSON string
    assert (await http.post(f"/socket/longpoll?token={token}", content=b"!!notbase64")).json() == {
        "status": 400
    }


async def test_refusals_unknown_tokens_and_methods(lp: tuple[Endpoint, httpx.AsyncClient]) -> None:
    _, http = lp
    assert (await http.get("/socket/longpoll?token=deny&vsn=2.0.0")).json() == {"status": 403}
    assert (await http.get("/socket/longpoll?vsn=9.0.0")).json() == {"status": 403}
    assert (await http.post("/socket/longpoll?token=unknown", content=b"")).json() == {"status": 410}
    assert (await http.get("/socket/longpoll?token=unknown&vsn=2.0.0")).json()["status"] == 410
    assert (await http.put("/socket/longpoll")).status_code == 400
    preflight = await http.options(
        "/socket/longpoll", headers={"access-control-request-headers": "content-type"}
    )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-headers"] == "content-type"


async def test_protocol_error_ends_the_session(lp: tuple[Endpoint, httpx.AsyncClient]) -> None:
    _, http = lp
    token = await open_session(http)
    assert (await http.post(f"/socket/longpoll?token={token}", content=b"[oops")).json() == {"status": 410}
    assert (await http.get(f"/socket/longpoll?token={token}")).json()["status"] == 410


async def test_session_expires_without_polls(lp: tuple[Endpoint, httpx.AsyncClient]) -> None:
    endpoint, http = lp
    token = await open_session(http)
    await http.post(f"/socket/longpoll?token={token}", content=b'["3","3","room:1","phx_join",{}]')
    for _ in range(50):
        if not endpoint.sessions:
            break
        await asyncio.sleep(0.1)
    assert endpoint.sessions == set()
    assert RoomChannel.terminated == [("room:1", "closed")]
    assert (await http.get(f"/socket/longpoll?token={token}")).json()["status"] == 410


async def test_longpoll_is_off_by_default(make_endpoint: EndpointFactory) -> None:
    async with serve(make_endpoint()) as url, httpx.AsyncClient() as http:
        response = await http.get(url.replace("ws://", "http://") + "/socket/longpoll")
    assert response.status_code == 404


async def test_a_session_nobody_polls_is_closed_as_a_slow_consumer(make_endpoint: EndpointFactory) -> None:
    """The server-side buffer is bounded like a WebSocket's outbound queue."""
    endpoint = make_endpoint(longpoll=True, longpoll_window=5.0, max_queue_frames=5)
    async with serve(endpoint) as url:
        async with httpx.AsyncClient(base_url=url.replace("ws://", "http://"), timeout=10) as http:
            token = await open_session(http)
            await http.post(f"/socket/longpoll?token={token}", content=b'["1","1","room:slow","phx_join",{}]')
            assert (await http.get(f"/socket/longpoll?token={token}")).json()[
                "status"
            ] == 200  # the join reply
            for i in range(20):  # nobody polls meanwhile
                await endpoint.broadcast("room:slow", "e", {"i": i})
            await asyncio.sleep(0)  # the session writes its frames on the next loop iteration
            assert endpoint.slow_consumers == 1
            again = (await http.get(f"/socket/longpoll?token={token}")).json()
            assert again["status"] == 410 and again["token"] != token  # the session is gone
