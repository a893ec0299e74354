"""Relaygate under test: one ``bench:*`` channel built with the public Channel API, served by uvicorn.

``phx_join`` replies ok; ``ping`` replies its payload; ``publish`` broadcasts its payload as
event ``msg`` to the topic, then replies ok. A join payload ``{"track": key, "meta": {...}}``
tracks that presence after the join and pushes ``presence_state`` (as a Phoenix app's
``after_join``). A connect with a ``token`` query parameter is authenticated as ``relaygate.accounts``
does from its in-memory view (``Accounts.identify_now``: the HS256 access token verified, its
``jti`` looked up among the revoked ones, the assigns built), without a database; a connect
without one is accepted anonymously. With ``RELAYGATE_REDIS_URL``
set, the node uses RedisPubSub + RedisPresence as ``RELAYGATE_NODE_NAME`` (the
``relaygate-redis`` system runs two such nodes); otherwise MemoryPubSub + MemoryPresence.
``benchhist:*`` is the same channel on topics that keep history (1000 broadcasts, 5 minutes).

Run as ``python -m bench.servers.relaygate_app --port N`` it serves as ``relaygate serve`` does:
the endpoint's WebSocket paths on Relaygate's own transport, the rest on uvicorn.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.types import ASGIApp

from relaygate.accounts import TokenCodec
from relaygate.channels import Channel, ChannelSocket, ConnectInfo, Endpoint, Reply, Socket
from relaygate.history import Keep, RedisHistory
from relaygate.presence import MemoryPresence, Presence, RedisPresence
from relaygate.pubsub import MemoryPubSub, PubSub
from relaygate.pubsub.redis import RedisPubSub

_OK = Reply.ok({})


class BenchChannel(Channel):
    def join(self, topic: str, payload: Any, socket: ChannelSocket) -> Reply:
        """A plain function: a join that needs no I/O is answered without a task."""
        if isinstance(payload, dict) and "track" in payload:
            socket.send_info(payload)
        return _OK

    def handle_in(self, event: str, payload: Any, socket: ChannelSocket) -> Reply | Awaitable[Reply]:
        """A plain function: ``ping`` is answered at once (no task); ``publish`` must await."""
        if event == "ping":
            return Reply.ok(payload)
        if event == "publish":
            return self._publish(payload, socket)
        return Reply.error({"reason": f"unknown event {event}"})

    async def _publish(self, payload: Any, socket: ChannelSocket) -> Reply:
        await socket.broadcast("msg", payload)
        return _OK

    def handle_info(self, message: Any, socket: ChannelSocket) -> None:
        """A plain function: after a join called at once it runs at once too (no task), and
        ``presence_state`` leaves in the same write as the join reply."""
        socket.track_now(str(message["track"]), message.get("meta", {}))
        socket.push_now("presence_state", socket.endpoint.require_presence().state(socket.topic))


TOKEN_KEY = "relaygate-bench-token-signing-key-not-a-secret"
"""Signs the load generator's access tokens (``token(index)``) and verifies them here."""
TOKENS = TokenCodec(TOKEN_KEY, 24 * 3600)
REVOKED: set[str] = set()


def token(index: int) -> str:
    """The access token of the load generator's ``index``-th client (a user of its own)."""
    return TOKENS.issue(index + 1, 1_700_000_000_000_000 + index).token


def accept(params: dict[str, str], info: ConnectInfo) -> dict[str, Any] | None:
    """Synchronous, as a connect hook that needs no I/O can be (no task per connect)."""
    token = params.get("token") or info.auth_token
    if token is None:
        return {}
    claims = TOKENS.verify(token)
    if claims is None or claims.jti in REVOKED:
        return None
    return {"user_id": claims.user_id, "jti": claims.jti}


def create_app() -> ASGIApp:
    return build()[0]


def build() -> tuple[ASGIApp, Endpoint]:
    redis_url = os.environ.get("RELAYGATE_REDIS_URL")
    pubsub: PubSub
    presence: Presence
    history: RedisHistory | None = None
    if redis_url:
        node = os.environ.get("RELAYGATE_NODE_NAME", "bench")
        pubsub = RedisPubSub(redis_url, node)
        presence = RedisPresence(pubsub, redis_url, node)
        history = RedisHistory(pubsub)
    else:
        pubsub = MemoryPubSub()
        presence = MemoryPresence(pubsub)
    socket = Socket("/socket", connect=accept)
    socket.channel("bench:*", BenchChannel)
    socket.channel("benchhist:*", BenchChannel, history=Keep(1000, 300))
    endpoint = Endpoint(pubsub=pubsub, presence=presence, history=history)
    endpoint.add_socket(socket)

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        await pubsub.start()
        await presence.start()
        if endpoint.history is not None:
            await endpoint.history.start()
        try:
            yield
        finally:
            if endpoint.history is not None:
                await endpoint.history.stop()
            await presence.stop()
            await pubsub.stop()

    # As relaygate.app deploys it: WebSocket paths are dispatched before the framework (smaller
    # idle sockets); the rest (lifespan, non-upgrade requests) goes through Starlette.
    return endpoint.wrap(Starlette(routes=endpoint.routes(), lifespan=lifespan)), endpoint


def main() -> None:
    from bench.servers.serving import arguments, run

    app, endpoint = build()
    run(app, endpoint, arguments(__doc__).parse_args())


if __name__ == "__main__":
    main()
