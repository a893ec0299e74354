"""python-socketio peer: the same three operations as the Relaygate bench channel, as an ASGI app.

``join`` (ack) enters a room; ``ping`` acks its payload; ``publish`` emits ``msg`` to the room,
then acks. Served by the same uvicorn with the same options as Relaygate.
"""

from __future__ import annotations

from typing import Any

import socketio


def create_app() -> socketio.ASGIApp:
    sio = socketio.AsyncServer(async_mode="asgi", transports=["websocket"], cors_allowed_origins=[])

    @sio.on("join")
    async def join(sid: str, topic: str) -> dict[str, Any]:
        await sio.enter_room(sid, topic)
        return {}

    @sio.on("ping")
    async def ping(sid: str, payload: Any) -> Any:
        return payload

    @sio.on("publish")
    async def publish(sid: str, data: dict[str, Any]) -> dict[str, Any]:
        await sio.emit("msg", data["payload"], room=data["topic"])
        return {}

    return socketio.ASGIApp(sio, socketio_path="socket.io")
