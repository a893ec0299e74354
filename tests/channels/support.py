"""A test channel exercising every callback result, plus an in-process uvicorn server."""

from __future__ import annotations

import asyncio
import contextlib
import socket as pysocket
from collections.abc import AsyncIterator, Callable
from typing import Any

import uvicorn
from starlette.applications import Starlette

from relaygate.channels import Channel, ChannelSocket, ConnectInfo, Endpoint, Reply, Socket, Stop


class RoomChannel(Channel):
    """Behaviour is chosen by topic (joins) and by event (pushes); terminate reasons are logged."""

    intercepts = ["intercepted"]
    terminated: list[tuple[str, str]] = []

    async def join(self, topic: str, payload: Any, socket: ChannelSocket) -> Reply:
        if topic == "room:deny":
            return Reply.error({"reason": "unauthorized"})
        if topic == "room:boom":
            raise RuntimeError("join exploded")
        if topic.startswith("room:slow"):
            await asyncio.sleep(payload.get("sleep", 0.5))
        if topic == "room:badjoin":
            return "oops"  # type: ignore[return-value]
        if topic == "room:hello":
            return Reply.ok({"hello": "x"})
        if topic == "room:p":
            return Reply.ok({"params": payload})
        if topic == "room:info":
            return Reply.ok({"connect": socket.assigns["params"], "auth_token": socket.assigns["auth_token"]})
        if topic.startswith("room:presence"):
            socket.send_info("after_join")
        if topic == "room:pushy":
            await socket.push("early", {"n": 1})
        return Reply.ok()

    async def handle_in(self, event: str, payload: Any, socket: ChannelSocket) -> Reply | Stop | None:
        if event == "ping":
            return Reply.ok(payload)
        if event == "bare":
            return Reply("ok")
        if event == "err":
            return Reply.error({"why": "nope"})
        if event == "noreply":
            return None
        if event == "stop":
            return Stop("normal")
        if event == "stop_reply":
            return Stop("shutdown", Reply.ok())
        if event == "stop_bad":
            return Stop("kaput")
        if event == "boom":
            raise RuntimeError("handle_in exploded")
        if event == "bad_result":
            return "oops"  # type: ignore[return-value]
        if event == "bcast":
            await socket.broadcast("new_msg", payload)
            return Reply.ok()
        if event == "bcast_from":
            await socket.broadcast_from("new_msg", payload)
            return Reply.ok()
        if event == "intercept":
            await socket.broadcast("intercepted", payload)
            return Reply.ok()
        if event == "filter":
            socket.assigns["filter"] = True
            return Reply.ok()
        if event == "bin":
            return Reply.ok(payload + b"\x03\x04")
        if event == "bin_push":
            await socket.push("bin_push", b"\x00\x01")
            return None
        if event == "bin_bcast":
            await socket.broadcast("b", b"\x09\x09")
            return None
        if event == "slow":
            await asyncio.sleep(payload["sleep"])
            return Reply.ok(payload)
        if event == "later":
            socket.send_info(("reply", socket.reply_ref(), payload))
            return None
        if event == "info_stop":
            socket.send_info("stop")
            return None
        if event == "away":
            await socket.update_presence(socket.assigns["user_id"], {"status": "away"})
            return Reply.ok()
        if event == "untrack":
            await socket.untrack(socket.assigns["user_id"])
            return Reply.ok()
        if event == "assign":
            socket.assigns["seen"] = payload
            return Reply.ok({"assigns": socket.assigns["seen"], "id": socket.id})
        return None

    async def handle_out(self, event: str, payload: Any, socket: ChannelSocket) -> Stop | None:
        if socket.assigns.get("filter"):
            return None
        await socket.push(event, {**payload, "field": socket.join_ref})
        return None

    async def handle_info(self, message: Any, socket: ChannelSocket) -> Stop | None:
        if message == "stop":
            return Stop("shutdown:done")
        if message == "after_join":
            await socket.track(socket.assigns["user_id"], {"online_at": 1})
            await socket.push("presence_state", socket.presence_list())
            return None
        _, ref, payload = message
        await socket.reply(ref, Reply.ok({"later": payload}))
        return None

    async def terminate(self, reason: str, socket: ChannelSocket) -> None:
        self.terminated.append((socket.topic, reason))


async def authenticate(params: dict[str, str], info: ConnectInfo) -> dict[str, Any] | None:
    if params.get("token") == "deny":
        return None
    if params.get("token") == "raise":
        raise RuntimeError("connect exploded")
    return {"user_id": params.get("user"), "params": params, "auth_token": info.auth_token}


def user_id(assigns: dict[str, Any]) -> str | None:
    user = assigns["user_id"]
    return None if user is None else f"user:{user}"


def make_socket() -> Socket:
    socket = Socket("/socket", connect=authenticate, id=user_id)
    socket.channel("room:*", RoomChannel)
    return socket


EndpointFactory = Callable[..., Endpoint]


@contextlib.asynccontextmanager
async def serve(endpoint: Endpoint, *, wrap: bool = False, wire: bool = True) -> AsyncIterator[str]:
    """Run uvicorn on a free 127.0.0.1 port with ``endpoint.routes()``; yields ``ws://host:port``.

    ``wire``: WebSocket paths on the endpoint's own transport (as ``relaygate serve``); else on
    the ASGI transport through uvicorn's protocol."""
    sock = pysocket.socket(pysocket.AF_INET, pysocket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    app: Any = Starlette(routes=endpoint.routes())
    if wrap:
        app = endpoint.wrap(app)
    # permessage-deflate off, as Phoenix: compressing per connection would defeat the fastlane
    config = uvicorn.Config(
        app,
        log_level="warning",
        lifespan="off",
        ws=endpoint.websocket_protocol() if wire else "websockets-sansio",
        http=endpoint.http_protocol() if wire else "auto",
        ws_per_message_deflate=False,
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        async with asyncio.timeout(10):
            while not server.started:
                await asyncio.sleep(0.01)
        yield f"ws://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)
        sock.close()
