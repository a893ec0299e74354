"""Relaygate under test: one ``bench:*`` channel built with the public Channel API, served by uvicorn.

``phx_join`` replies ok; ``ping`` replies its payload; ``publish`` broadcasts its payload as
event ``msg`` to the topic, then replies ok. No authentication (every connect is accepted).
"""

from __future__ import annotations

from typing import Any

from relaygate.channels import Channel, ChannelSocket, ConnectInfo, Endpoint, Reply, Socket
from starlette.applications import Starlette

from relaygate.pubsub import MemoryPubSub


class BenchChannel(Channel):
    async def join(self, topic: str, payload: Any, socket: ChannelSocket) -> Reply:
        return Reply.ok({})

    async def handle_in(self, event: str, payload: Any, socket: ChannelSocket) -> Reply:
        if event == "ping":
            return Reply.ok(payload)
        if event == "publish":
            await socket.broadcast("msg", payload)
            return Reply.ok({})
        return Reply.error({"reason": f"unknown event {event}"})


async def accept(params: dict[str, str], info: ConnectInfo) -> dict[str, Any]:
    return {}


def create_app() -> Starlette:
    socket = Socket("/socket", connect=accept)
    socket.channel("bench:*", BenchChannel)
    endpoint = Endpoint(pubsub=MemoryPubSub())
    endpoint.add_socket(socket)
    return Starlette(routes=endpoint.routes())
