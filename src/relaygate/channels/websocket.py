"""The ASGI WebSocket transport at ``<socket path>/websocket``: handshake, then one task per connection."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from relaygate.channels.api import ConnectInfo
from relaygate.channels.session import Session
from relaygate.protocol import Frame, parse_subprotocols

if TYPE_CHECKING:
    from relaygate.channels.endpoint import Endpoint
    from relaygate.channels.socket import Socket


def query_params(scope: Scope) -> dict[str, str]:
    """Flat query params (the last value of a repeated key wins)."""
    return dict(parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True))


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


class AsgiTransport:
    """Writes frames through the ASGI ``send`` callable of one WebSocket."""

    __slots__ = ("_send",)

    def __init__(self, send: Send) -> None:
        self._send = send

    async def send(self, frame: Frame) -> None:
        if type(frame) is str:
            await self._send({"type": "websocket.send", "text": frame})
        else:
            await self._send({"type": "websocket.send", "bytes": frame})

    async def close(self, code: int, reason: str) -> None:
        await self._send({"type": "websocket.close", "code": code, "reason": reason})


class WebSocketApp:
    """ASGI app for one Socket. Refusals (origin, vsn, connect, id) are HTTP 403 before the upgrade."""

    def __init__(self, endpoint: Endpoint, socket: Socket, *, owns_scope: bool = False) -> None:
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
            await session.finish()

    async def _handshake(self, scope: Scope, receive: Receive, send: Send) -> Session | None:
        """Accept and start a session, or refuse with 403 (a separate frame: its locals die here)."""
        if (await receive())["type"] != "websocket.connect":
            return None
        headers = header_map(scope)
        origin = headers.get("origin")
        endpoint = self.endpoint
        subprotocols = parse_subprotocols(scope.get("subprotocols", ()))
        accepted = None
        if subprotocols.valid and endpoint.origin_check.allows(origin, headers.get("host")):
            info = ConnectInfo(subprotocols.auth_token, peer_of(scope), headers, origin)
            accepted = await endpoint.authorize(self.socket, query_params(scope), info)
        if accepted is None:
            await send({"type": "websocket.close", "code": 1008})  # before accept: HTTP 403
            return None
        message: dict[str, Any] = {"type": "websocket.accept"}
        if subprotocols.accept is not None:
            message["subprotocol"] = subprotocols.accept
        await send(message)
        session = Session(
            endpoint,
            self.socket,
            accepted.serializer,
            accepted.assigns,
            accepted.socket_id,
            peer_of(scope),
            AsgiTransport(send),
        )
        await session.start()
        return session


async def _not_an_upgrade(request: Request) -> Response:
    return Response(status_code=400)


def websocket_dispatcher(endpoint: Endpoint, app: ASGIApp) -> ASGIApp:
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


def websocket_routes(endpoint: Endpoint, socket: Socket) -> list[BaseRoute]:
    path = socket.path + "/websocket"
    methods = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
    return [
        WebSocketRoute(path, WebSocketApp(endpoint, socket)),
        Route(path, _not_an_upgrade, methods=methods),
    ]
