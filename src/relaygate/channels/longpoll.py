"""The long-poll transport at ``<socket path>/longpoll`` (phoenix-protocol.md section 9).

Every answer is HTTP 200 with ``{"status": N, ...}``. A GET without a live token connects and
answers 410 with a new token; a GET with the token returns the buffered frames (each a JSON
string) or holds until one arrives or the window ends (204); a POST feeds ndjson frames. A
session with no poll for 1.5 x window expires and its channels terminate as ``closed``.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import secrets
import time
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from relaygate.channels.api import ConnectInfo, logger
from relaygate.channels.core import EndpointCore
from relaygate.channels.session import Session
from relaygate.channels.socket import Socket
from relaygate.protocol import Frame

MAX_LINES = 100
_HEADERS = {"access-control-allow-origin": "*", "cache-control": "no-store"}


def _answer(body: dict[str, Any], status: int = 200) -> Response:
    return Response(orjson.dumps(body), status, _HEADERS, media_type="application/json")


class LongPollTransport:
    """Buffers server frames until the client polls; binary frames cannot travel as JSON strings.

    The buffer has the bounds of a WebSocket's outbound queue: past them the session is closed
    as a slow consumer, so a client that stops polling cannot make the server hoard its frames.
    """

    __slots__ = (
        "_arrived",
        "_bytes",
        "_max_bytes",
        "_max_frames",
        "closed",
        "last_poll",
        "messages",
        "session",
        "token",
    )

    def __init__(self, token: str, max_frames: int, max_bytes: int) -> None:
        self.token = token
        self.messages: list[str] = []
        self._bytes = 0
        self._max_frames = max_frames
        self._max_bytes = max_bytes
        self.closed = False
        self.last_poll = time.monotonic()
        self._arrived = asyncio.Event()
        self.session: Session | None = None

    wire = False

    def write(self, frames: list[Frame]) -> None:
        for frame in frames:
            if isinstance(frame, bytes):
                logger.warning("dropping a binary frame: long-poll carries JSON text frames only")
                continue
            self.messages.append(frame)
            self._bytes += len(frame)
        if len(self.messages) > self._max_frames or self._bytes > self._max_bytes:
            queued, self.messages, self._bytes = len(self.messages), [], 0
            if self.session is not None:
                self.session.slow_consumer(queued)
            return
        self._arrived.set()

    def close(self, code: int, reason: str) -> None:
        self.closed = True
        self._arrived.set()

    async def poll(self, window: float) -> list[str]:
        """Wait up to ``window`` for frames; returns (and clears) the buffer."""
        self.last_poll = time.monotonic()
        if not self.messages and not self.closed:
            self._arrived.clear()
            try:
                async with asyncio.timeout(window):
                    await self._arrived.wait()
            except TimeoutError:
                pass
        self.last_poll = time.monotonic()
        messages, self.messages, self._bytes = self.messages, [], 0
        return messages


class LongPollApp:
    def __init__(self, endpoint: EndpointCore, socket: Socket) -> None:
        self.endpoint = endpoint
        self.socket = socket
        self.sessions: dict[str, LongPollTransport] = {}

    async def handle(self, request: Request) -> Response:
        if request.method not in ("GET", "POST", "OPTIONS"):
            return Response(status_code=400, headers=_HEADERS)
        if request.method == "OPTIONS":
            headers = {
                **_HEADERS,
                "access-control-allow-methods": "get, post, options",
                "access-control-allow-headers": request.headers.get("access-control-request-headers", "*"),
                "access-control-max-age": "3600",
            }
            return Response(status_code=200, headers=headers)
        token = request.query_params.get("token") or request.headers.get("x-phoenix-longpoll-token")
        transport = self.sessions.get(token) if token else None
        if transport is not None and transport.closed:
            await self._expire(transport)
            transport = None
        if request.method == "POST":
            if transport is None:
                return _answer({"status": 410})
            return _answer({"status": await self._publish(transport, await request.body())})
        if transport is None:
            return await self._connect(request)
        messages = await transport.poll(self.endpoint.longpoll_window)
        if transport.closed and not messages:
            await self._expire(transport)
            return await self._connect(request)
        return _answer({"status": 200 if messages else 204, "token": transport.token, "messages": messages})

    async def _connect(self, request: Request) -> Response:
        endpoint = self.endpoint
        headers = {key: value for key, value in request.headers.items()}
        origin = headers.get("origin")
        if not endpoint.origin_check.allows(origin, headers.get("host")):
            return _answer({"status": 403})
        peer = (request.client.host, request.client.port) if request.client else None
        info = ConnectInfo(headers.get("x-phoenix-authtoken"), peer, headers, origin)
        params = dict(request.query_params)  # a ``token`` that is no live session is the app's param
        accepted = await endpoint.authorize(self.socket, params, info)
        if accepted is None:
            return _answer({"status": 403})
        token = secrets.token_urlsafe(24)
        transport = LongPollTransport(token, endpoint.max_queue_frames, endpoint.max_queue_bytes)
        session = Session(
            endpoint, self.socket, accepted.serializer, accepted.assigns, accepted.socket_id, peer, transport
        )
        transport.session = session
        await session.start(watch_idle=False)
        self.sessions[token] = transport
        asyncio.get_running_loop().call_later(self._expiry(), self._check_expiry, transport)
        return _answer({"status": 410, "token": token, "messages": []})

    def _expiry(self) -> float:
        return 1.5 * self.endpoint.longpoll_window

    def _check_expiry(self, transport: LongPollTransport) -> None:
        if self.sessions.get(transport.token) is not transport:
            return
        remaining = transport.last_poll + self._expiry() - time.monotonic()
        if remaining > 0 and not transport.closed:
            asyncio.get_running_loop().call_later(remaining, self._check_expiry, transport)
        else:
            asyncio.get_running_loop().create_task(self._expire(transport))

    async def _expire(self, transport: LongPollTransport) -> None:
        if self.sessions.pop(transport.token, None) is not None and transport.session is not None:
            transport.closed = True
            await transport.session.finish()

    async def _publish(self, transport: LongPollTransport, body: bytes) -> int:
        """Feed each ndjson line (a JSON text frame, or base64 of a binary frame) in order."""
        session = transport.session
        assert session is not None
        lines = [line for line in body.split(b"\n") if line.strip()]
        if len(lines) > MAX_LINES:
            return 400
        for line in lines:
            if line.lstrip().startswith(b"["):
                try:
                    session.feed(line.decode())
                except UnicodeDecodeError:
                    return 400
            else:
                try:
                    session.feed(base64.b64decode(line, validate=True))
                except binascii.Error:
                    return 400
        if session.closing:
            await self._expire(transport)
            return 410
        return 200


def longpoll_routes(endpoint: EndpointCore, socket: Socket) -> list[BaseRoute]:
    methods = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
    return [Route(socket.path + "/longpoll", LongPollApp(endpoint, socket).handle, methods=methods)]
