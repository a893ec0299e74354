"""A scripted WebSocket server on 127.0.0.1: tests read what the client sent and answer by hand."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import pytest
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.http11 import Request, Response
from websockets.typing import Subprotocol

WAIT = 5.0


class Conn:
    """One accepted connection: its request, the frames received, and helpers to answer."""

    def __init__(self, ws: ServerConnection, auto_heartbeat: bool) -> None:
        self.ws = ws
        self.path = ws.request.path if ws.request else ""
        self.headers: Headers = ws.request.headers if ws.request else Headers()
        self.frames: asyncio.Queue[Any] = asyncio.Queue()
        self.heartbeats: list[list[Any]] = []
        self.auto_heartbeat = auto_heartbeat
        self.closed = asyncio.Event()

    async def pump(self) -> None:
        try:
            async for data in self.ws:
                frame = data if isinstance(data, bytes) else json.loads(data)
                if isinstance(frame, list) and frame[2:4] == ["phoenix", "heartbeat"]:
                    self.heartbeats.append(frame)
                    if self.auto_heartbeat:
                        await self.send(
                            [None, frame[1], "phoenix", "phx_reply", {"status": "ok", "response": {}}]
                        )
                    continue
                await self.frames.put(frame)
        finally:
            self.closed.set()

    async def recv(self, timeout: float = WAIT) -> Any:
        """The next non-heartbeat frame (a list for V2 text, a dict for V1, bytes for binary)."""
        return await asyncio.wait_for(self.frames.get(), timeout)

    async def no_frame(self, wait: float = 0.3) -> None:
        with pytest.raises(TimeoutError):
            frame = await asyncio.wait_for(self.frames.get(), wait)
            pytest.fail(f"unexpected frame {frame!r}")

    async def send(self, frame: Any) -> None:
        await self.ws.send(frame if isinstance(frame, bytes) else json.dumps(frame))

    async def reply(self, frame: list[Any], status: str = "ok", response: Any = None) -> None:
        """Answer a V2 client frame `[JR, R, topic, ...]` with a phx_reply."""
        join_ref, ref, topic = frame[0], frame[1], frame[2]
        payload = {"status": status, "response": {} if response is None else response}
        await self.send([join_ref, ref, topic, "phx_reply", payload])

    async def accept_join(self, topic: str, response: Any = None) -> list[Any]:
        frame = await self.recv()
        assert frame[2:4] == [topic, "phx_join"], frame
        await self.reply(frame, "ok", response)
        return frame


class ScriptedServer:
    def __init__(self) -> None:
        self.connections: asyncio.Queue[Conn] = asyncio.Queue()
        self.refuse_status: int | None = None
        self.auto_heartbeat = True
        self.all: list[Conn] = []
        self._server: Server | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        port = self._server.sockets[0].getsockname()[1]
        return f"ws://127.0.0.1:{port}/socket"

    async def start(self) -> None:
        self._server = await serve(
            self._handle,
            "127.0.0.1",
            0,
            process_request=self._process_request,
            select_subprotocol=self._select_subprotocol,
        )

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    async def next_connection(self, timeout: float = WAIT) -> Conn:
        return await asyncio.wait_for(self.connections.get(), timeout)

    def _process_request(self, ws: ServerConnection, request: Request) -> Response | None:
        if self.refuse_status is not None:
            return ws.respond(self.refuse_status, "")
        return None

    @staticmethod
    def _select_subprotocol(ws: ServerConnection, offered: list[Subprotocol]) -> Subprotocol | None:
        return Subprotocol("phoenix") if "phoenix" in offered else None

    async def _handle(self, ws: ServerConnection) -> None:
        conn = Conn(ws, self.auto_heartbeat)
        self.all.append(conn)
        await self.connections.put(conn)
        await conn.pump()


async def eventually(condition: Callable[[], bool], timeout: float = WAIT) -> None:
    """Wait (bounded) until `condition()` holds; fail the test otherwise."""
    for _ in range(int(timeout / 0.01)):
        if condition():
            return
        await asyncio.sleep(0.01)
    pytest.fail("condition not met in time")
