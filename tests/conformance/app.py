"""The conformance test app (phoenix-protocol.md section 11 setup), built with the Channel API.

`room:*` behaves by topic and event; every callback is recorded in `LOG` so tests can check what
the server saw (join payloads, handle_in calls, terminate reasons). Built with a Presence, every
successful join is followed by `presence_state` (after tracking `{"track": key, "meta": {...}}`
from the join payload when given), as a Phoenix app does in `handle_info(:after_join)`.
`cluster_app` is one node of a Redis cluster, for uvicorn in its own process.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette

from relaygate.channels import Channel, ChannelSocket, ConnectInfo, Endpoint, Reply, Socket, Stop
from relaygate.history import Keep, RedisHistory
from relaygate.presence import Presence, RedisPresence
from relaygate.pubsub import MemoryPubSub, PubSub
from relaygate.pubsub.redis import RedisPubSub

LOG: list[tuple[Any, ...]] = []
_HELD: set[str] = set()


async def authenticate(params: dict[str, str], info: ConnectInfo) -> dict[str, Any] | None:
    """Refuse `token=bad`; keep the params and the authToken to echo them in `room:info`."""
    if params.get("token") == "bad":
        return None
    return {"params": dict(params), "auth_token": info.auth_token, "user_id": params.get("user_id")}


def socket_id(assigns: dict[str, Any]) -> str | None:
    user_id = assigns.get("user_id")
    return f"user:{user_id}" if user_id else None


class RoomChannel(Channel):
    intercepts = ["intercepted"]

    async def join(self, topic: str, payload: Any, socket: ChannelSocket) -> Reply:
        LOG.append(("join", topic, payload, socket.join_ref))
        name = topic.split(":", 1)[1]
        if name == "deny":
            return Reply.error({"reason": "unauthorized"})
        if name == "boom":
            raise RuntimeError("join crashes on purpose")
        if name == "hello":
            return Reply.ok({"hello": "x"})
        if name == "info":
            return Reply.ok({"params": socket.assigns["params"], "auth_token": socket.assigns["auth_token"]})
        if name == "slow" and payload.get("hold") not in _HELD:
            _HELD.add(payload["hold"])  # hold only the first join of this key: a rejoin then succeeds
            await asyncio.sleep(payload.get("ms", 800) / 1000)
        if name == "pushy":
            socket.send_info("after_join")
        if socket.endpoint.presence is not None:
            socket.send_info(("after_join_presence", payload))
        return Reply.ok()

    async def handle_in(self, event: str, payload: Any, socket: ChannelSocket) -> Reply | Stop | None:
        LOG.append(("handle_in", socket.topic, event, payload))
        if event == "ping":
            return Reply.ok(payload)
        if event == "fail":
            return Reply.error({"why": "nope"})
        if event == "noreply":
            return None
        if event == "crash":
            raise RuntimeError("handle_in crashes on purpose")
        if event == "stop":
            return Stop("normal")
        if event == "stop_reply":
            return Stop("shutdown", Reply.ok({}))
        if event == "bin":
            return Reply.ok(bytes(payload) + b"\x03\x04")
        if event == "bin_push":
            await socket.push("bin_push", b"\x00\x01")
            return Reply.ok()
        if event == "bin_broadcast":
            await socket.broadcast("b", b"\x09\x09")
            return Reply.ok()
        if event == "push_me":
            await socket.push(payload["event"], payload["payload"])
            return Reply.ok()
        if event == "broadcast":
            await socket.broadcast(payload["event"], payload["payload"])
            return Reply.ok()
        if event == "burst":  # many broadcasts, yielding between them (to race a rejoin)
            for n in range(payload["n"]):
                await socket.broadcast(payload["event"], {"n": n})
                await asyncio.sleep(0)
            return Reply.ok()
        if event == "broadcast_from":
            await socket.broadcast_from(payload["event"], payload["payload"])
            return Reply.ok()
        if event == "disconnect":
            await socket.endpoint.disconnect(payload["id"])
            return Reply.ok()
        return await super().handle_in(event, payload, socket)

    async def handle_out(self, event: str, payload: Any, socket: ChannelSocket) -> Stop | None:
        await socket.push(event, {**payload, "seen_by": socket.assigns.get("user_id")})
        return None

    async def handle_info(self, message: Any, socket: ChannelSocket) -> Stop | None:
        if message == "after_join":
            await socket.push("joined", {"topic": socket.topic})
        elif isinstance(message, tuple) and message[0] == "after_join_presence":
            payload = message[1]
            if isinstance(payload, dict) and "track" in payload:
                await socket.track(payload["track"], payload.get("meta", {}))
            await socket.push("presence_state", socket.presence_list())
        return None

    async def terminate(self, reason: str, socket: ChannelSocket) -> None:
        LOG.append(("terminate", socket.topic, socket.join_ref, reason))


def build_app(
    longpoll_window: float = 1.0,
    pubsub: PubSub | None = None,
    presence: Presence | None = None,
    history: RedisHistory | None = None,
) -> Starlette:
    """The Starlette app serving `/socket/websocket` and `/socket/longpoll`.

    `hist:*` is the same channel on topics that keep history (the last 5 broadcasts, 60 s),
    `histbig:*` keeps 1000.
    With `pubsub`/`presence`/`history`, the app's lifespan starts and stops them.
    """
    socket = Socket("/socket", connect=authenticate, id=socket_id)
    socket.channel("room:*", RoomChannel)
    socket.channel("hist:*", RoomChannel, history=Keep(5, 60))
    socket.channel("histbig:*", RoomChannel, history=Keep(1000, 60))
    pubsub = pubsub or MemoryPubSub()
    endpoint = Endpoint(
        pubsub=pubsub, presence=presence, longpoll=True, longpoll_window=longpoll_window, history=history
    )
    endpoint.add_socket(socket)

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        await pubsub.start()
        if presence is not None:
            await presence.start()
        if endpoint.history is not None:
            await endpoint.history.start()
        try:
            yield
        finally:
            if endpoint.history is not None:
                await endpoint.history.stop()
            if presence is not None:
                await presence.stop()
            await pubsub.stop()

    application = Starlette(routes=endpoint.routes(), lifespan=lifespan)
    application.state.endpoint = endpoint  # the conformance server runs its WebSocket protocol
    return application


def cluster_app() -> Starlette:
    """One cluster node: RedisPubSub + RedisPresence on `RELAYGATE_REDIS_URL` as `RELAYGATE_NODE_NAME`.

    `uvicorn --factory tests.conformance.app:cluster_app` (tests/cluster starts two of them).
    """
    redis_url, node = os.environ["RELAYGATE_REDIS_URL"], os.environ["RELAYGATE_NODE_NAME"]
    pubsub = RedisPubSub(redis_url, node)
    # one diff per change, as Phoenix: the scenarios count presence.js callbacks per change
    return build_app(
        pubsub=pubsub,
        presence=RedisPresence(pubsub, redis_url, node, diff_window=0),
        history=RedisHistory(pubsub),
    )
