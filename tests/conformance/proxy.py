"""A WebSocket relay in front of the server that can swallow heartbeat replies (scenario 48).

A real server always answers heartbeats; to see how phoenix.js recovers from a missed reply,
the relay drops them on the first connection only and records how the client closed it.
"""

from __future__ import annotations

import asyncio
import contextlib

import orjson
from websockets.asyncio.client import ClientConnection, connect
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed


def _is_heartbeat_reply(data: str | bytes) -> bool:
    if isinstance(data, bytes):
        return False
    frame = orjson.loads(data)
    return isinstance(frame, list) and frame[2:4] == ["phoenix", "phx_reply"]


class HeartbeatDropProxy:
    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.connections = 0
        self.client_closes: list[tuple[int | None, str | None]] = []
        self._server: Server | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"ws://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"

    async def start(self) -> None:
        self._server = await serve(self._relay, "127.0.0.1", 0)

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    async def _relay(self, downstream: ServerConnection) -> None:
        self.connections += 1
        drop = self.connections == 1
        assert downstream.request is not None
        async with connect(self.upstream + downstream.request.path) as upstream:
            tasks = [
                asyncio.create_task(self._pipe(downstream, upstream, drop=False)),
                asyncio.create_task(self._pipe(upstream, downstream, drop=drop)),
            ]
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        rcvd = downstream.protocol.close_rcvd
        self.client_closes.append((rcvd.code, rcvd.reason) if rcvd else (None, None))

    @staticmethod
    async def _pipe(
        source: ServerConnection | ClientConnection, sink: ServerConnection | ClientConnection, drop: bool
    ) -> None:
        with contextlib.suppress(ConnectionClosed):
            async for data in source:
                if drop and _is_heartbeat_reply(data):
                    continue
                await sink.send(data)
