"""The ASGI WebSocket transport at ``<socket path>/websocket``, for any ASGI server.

``relaygate serve`` uses the faster :mod:`relaygate.channels.wire` protocol instead; this one
serves the endpoint where it is mounted in a framework or run by another server.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Coroutine
from typing import Any, cast

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from relaygate.channels.core import EndpointCore
from relaygate.channels.handshake import admit
from relaygate.channels.session import Session
from relaygate.channels.socket import Socket
from relaygate.protocol import Frame


def header_map(scope: Scope) -> dict[str, str]:
    return {name.decode("latin-1"): value.decode("latin-1") for name, value in scope.get("headers", ())}


def peer_of(scope: Scope) -> tuple[str, int] | None:
    """The client address; the server's own tuple when it is one (a session keeps it for life)."""
    client = scope.get("client")
    if not client:
        return None
    if type(client) is tuple and len(client) == 2:
        return client
    return (client[0], client[1])


async def _resume(coroutine: Coroutine[Any, Any, None], blocker: Any) -> None:
    """Drive a coroutine that suspended on ``blocker`` (a future, or None for a bare yield)
    to completion from the current task, as a Task would have."""
    while True:
        if blocker is None:
            await asyncio.sleep(0)
        else:
            blocker._asyncio_future_blocking = False  # what a Task does with a yielded future
            try:
                await blocker
            except asyncio.CancelledError:
                task = asyncio.current_task()
                if task is not None and task.cancelling():
                    coroutine.close()
                    raise
            except Exception:  # noqa: S110 - the coroutine receives it from the future's result()
                pass
        try:
            blocker = coroutine.send(None)
        except StopIteration:
            return


def _message(frame: Frame) -> Message:
    if type(frame) is str:
        return {"type": "websocket.send", "text": frame}
    return {"type": "websocket.send", "bytes": frame}


class AsgiTransport:
    """Writes frames through the ASGI ``send`` callable of one WebSocket.

    A send normally completes without suspending (the frame goes straight to the socket buffer),
    so it is run inline, without a task. Only when it must wait (a full buffer) does a task
    finish it, with the session paused meanwhile so that its queue bounds apply.
    """

    __slots__ = ("_backlog", "_send", "_task", "session")

    wire = False

    def __init__(self, send: Send) -> None:
        self._send = send
        self._backlog: deque[Message] | None = None
        self._task: asyncio.Task[None] | None = None
        self.session: Session | None = None

    def write(self, frames: list[Frame]) -> None:
        for frame in frames:
            self._post(_message(frame))

    def close(self, code: int, reason: str) -> None:
        self._post({"type": "websocket.close", "code": code, "reason": reason})

    def _post(self, message: Message) -> None:
        if self._backlog is not None:
            self._backlog.append(message)
            return
        send = cast("Coroutine[Any, Any, None]", self._send(message))
        try:
            blocker = send.send(None)
        except StopIteration:
            return
        self._backlog = deque()
        if self.session is not None:
            self.session.pause_writing()
        self._task = asyncio.get_running_loop().create_task(self._drain(send, blocker))

    async def _drain(self, started: Coroutine[Any, Any, None], blocker: Any) -> None:
        try:
            await _resume(started, blocker)
            while self._backlog:
                await self._send(self._backlog.popleft())
        except Exception:  # noqa: S110 - the client went away; the receive loop ends the session
            pass
        finally:
            self._backlog = None
            self._task = None
        if self.session is not None:
            self.session.resume_writing()

    def cancel(self) -> None:
        if self._task is not None:
            self._task.cancel()


class WebSocketApp:
    """ASGI app for one Socket. Refusals (origin, vsn, connect, id) are HTTP 403 before the upgrade."""

    def __init__(self, endpoint: EndpointCore, socket: Socket, *, owns_scope: bool = False) -> None:
        """``owns_scope``: this app is the server's own (no framework or middleware around it shares
        the scope), so the handshake's headers can be dropped once the connection is accepted."""
        self.endpoint = endpoint
        self.socket = socket
        self.owns_scope = owns_scope

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        session = await self._handshake(scope, receive, send)
        if session is None:
            return
        if self.owns_scope:
            scope["headers"] = []  # the server keeps the scope for the socket's life: ~1 KB per idle socket
        try:
            feed = session.feed
            while True:
                event = await receive()
                if event["type"] != "websocket.receive":
                    break  # websocket.disconnect
                text = event.get("text")
                feed(text if text is not None else event["bytes"])
                del event, text  # an idle socket keeps no copy of the last frame it received
        finally:
            transport = session.transport
            if isinstance(transport, AsgiTransport):
                transport.cancel()
            await session.finish()

    async def _handshake(self, scope: Scope, receive: Receive, send: Send) -> Session | None:
        """Accept and start a session, or refuse with 403 (a separate frame: its locals die here)."""
        if (await receive())["type"] != "websocket.connect":
            return None
        query = scope.get("query_string", b"").decode("latin-1")
        peer = peer_of(scope)
        admitted = await admit(
            self.endpoint, self.socket, query, header_map(scope), scope.get("subprotocols", ()), peer
        )
        if admitted is None:
            await send({"type": "websocket.close", "code": 1008})  # before accept: HTTP 403
            return None
        accepted, subprotocol = admitted
        message: dict[str, Any] = {"type": "websocket.accept"}
        if subprotocol is not None:
            message["subprotocol"] = subprotocol
        await send(message)
        transport = AsgiTransport(send)
        session = Session(
            self.endpoint,
            self.socket,
            accepted.serializer,
            accepted.assigns,
            accepted.socket_id,
            peer,
            transport,
        )
        transport.session = session
        await session.start()
        return session


async def _not_an_upgrade(request: Request) -> Response:
    return Response(status_code=400)


def websocket_dispatcher(endpoint: EndpointCore, app: ASGIApp) -> ASGIApp:
    """Serve the endpoint's WebSocket paths straight from the server, everything else with ``app``.

    Mounting through a framework keeps each connection's coroutine inside every middleware layer
    for its whole life; dispatching first saves that memory per idle socket.
    """
    handlers = {
        socket.path + "/websocket": WebSocketApp(endpoint, socket, owns_scope=True)
        for socket in endpoint.sockets
    }

    async def dispatch(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            handler = handlers.get(scope["path"])
            if handler is not None:
                await handler(scope, receive, send)
                return
        await app(scope, receive, send)

    return dispatch


def websocket_routes(endpoint: EndpointCore, socket: Socket) -> list[BaseRoute]:
    path = socket.path + "/websocket"
    methods = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
    return [
        WebSocketRoute(path, WebSocketApp(endpoint, socket)),
        Route(path, _not_an_upgrade, methods=methods),
    ]
