"""The WebSocket transport Relaygate runs itself: an asyncio Protocol on uvicorn's listening socket.

uvicorn keeps serving HTTP on the same port. As uvicorn's HTTP protocol
(``uvicorn.Config(http=endpoint.http_protocol(...))``) this protocol sees a connection's first
bytes: an upgrade of one of the endpoint's socket paths is handled here from the first byte
(no HTTP parser, no request objects), any other connection is handed to the real HTTP protocol
(``transport.set_protocol``), untouched. As uvicorn's WebSocket protocol
(``ws=endpoint.websocket_protocol()``) it takes the upgrades uvicorn's HTTP protocol parsed (a
keep-alive connection that upgrades later). For the endpoint's socket paths: the handshake,
then frames parsed sans-I/O (:mod:`relaygate.protocol.websocket`) and fed to the session, and
outgoing frames written as bytes built once (a broadcast's frame is the same object for every
socket). Any other WebSocket path is handed to uvicorn's own protocol, so the app's other
WebSocket routes keep working.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Coroutine
from typing import Any, ClassVar

from uvicorn.config import HTTP_PROTOCOLS
from uvicorn.importer import import_from_string
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

from relaygate.channels.api import logger
from relaygate.channels.core import EndpointCore
from relaygate.channels.handshake import Admitted, admit_now
from relaygate.channels.session import Session
from relaygate.channels.socket import Socket
from relaygate.protocol import Frame, ProtocolError
from relaygate.protocol.websocket import (
    OP_CLOSE,
    OP_PING,
    OP_PONG,
    Control,
    FrameParser,
    HandshakeError,
    Upgrade,
    accept_response,
    close_frame,
    encode_frame,
    parse_upgrade,
    reject_response,
)

CLOSE_TIMEOUT = 10.0
"""How long a closing connection waits for the client's close frame before dropping the TCP connection."""

MAX_HEAD = 64 * 1024
"""A connection whose first request head is longer is handed to the HTTP protocol (its limits apply)."""

_HANDSHAKE = 0
_OPEN = 1
_CLOSING = 2
_CLOSED = 3
_DELEGATED = 4


class WebSocketProtocol(asyncio.Protocol):
    """One WebSocket connection; subclassed per endpoint by :meth:`bind` (uvicorn instantiates it)."""

    __slots__ = ("_buffer", "_delegate", "_parser", "_server", "_session", "_state", "_timer", "_transport")

    endpoint: ClassVar[EndpointCore]
    paths: ClassVar[dict[str, Socket]]
    max_buffer: ClassVar[int]
    http: ClassVar[type[asyncio.Protocol] | None] = None
    """Set when this class is uvicorn's HTTP protocol: the protocol of every connection whose first
    request is not an upgrade of one of :attr:`paths`."""

    @classmethod
    def bind(
        cls, endpoint: EndpointCore, http: type[asyncio.Protocol] | str | None = None
    ) -> type[WebSocketProtocol]:
        """A protocol class serving ``endpoint``'s ``<socket path>/websocket`` paths: uvicorn's
        WebSocket protocol, or with ``http`` (a class or a uvicorn ``--http`` name) its HTTP one."""
        if isinstance(http, str):
            http = import_from_string(HTTP_PROTOCOLS.get(http, http))
        attributes = {
            "__slots__": (),
            "endpoint": endpoint,
            "paths": {socket.path + "/websocket": socket for socket in endpoint.sockets},
            "max_buffer": endpoint.max_queue_bytes,
            "http": http,
        }
        name = "EndpointWebSocketProtocol" if http is None else "EndpointHttpProtocol"
        return type(name, (cls,), attributes)

    def __init__(self, config: Any, server_state: Any, app_state: dict[str, Any], **_: Any) -> None:
        self._server: tuple[Any, Any, dict[str, Any]] = (config, server_state, app_state)
        self._transport: asyncio.Transport | None = None
        self._parser: FrameParser | None = None
        self._session: Session | None = None
        self._buffer = b""
        self._state = _HANDSHAKE
        self._timer: asyncio.TimerHandle | None = None
        self._delegate: asyncio.Protocol | None = None

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]
        self._server[1].connections.add(self)

    def data_received(self, data: bytes) -> None:
        state = self._state
        if state == _OPEN or state == _CLOSING:
            parser = self._parser
            assert parser is not None
            session = self._session
            if state == _OPEN and session is not None:
                text = parser.whole_text(data)
                if text is not None and session.feed_text(text):
                    return  # the common read: one push to a joined channel, handled
            for event in parser.feed(data):
                kind = type(event)
                if kind is str or kind is bytes:
                    if self._state == _OPEN and session is not None:
                        session.feed(event)  # type: ignore[arg-type]
                elif kind is Control:
                    self._control(event)  # type: ignore[arg-type]
                else:
                    error: ProtocolError = event  # type: ignore[assignment]
                    logger.info("closing connection %s: %s", session and session.peer, error.reason)
                    self._send_close(error.code, error.reason)
                    self._drop()
        elif state == _HANDSHAKE:
            buffer = self._buffer = self._buffer + data if self._buffer else data
            if self._parser is None:
                if self.http is not None and not (buffer.startswith(b"GET ") or b"GET ".startswith(buffer)):
                    self._hand_to_http()  # not a GET: never an upgrade, the HTTP protocol answers
                elif b"\r\n\r\n" in buffer:
                    self._upgrade()
                elif len(buffer) > MAX_HEAD:
                    if self.http is None:
                        self._reject(400)
                    else:
                        self._hand_to_http()
        elif state == _DELEGATED and self._delegate is not None:
            self._delegate.data_received(data)

    def _control(self, control: Control) -> None:
        opcode = control.opcode
        transport = self._transport
        assert transport is not None
        if opcode == OP_PING:
            if self._state == _OPEN:
                transport.write(encode_frame(OP_PONG, control.payload))
        elif opcode == OP_CLOSE:
            if self._state == _OPEN:  # the client closes: answer with its code, then hang up
                code = control.code
                transport.write(close_frame(code) if code != 1005 else encode_frame(OP_CLOSE, b""))
            self._drop()

    def pause_writing(self) -> None:
        if self._session is not None:
            self._session.pause_writing()
        elif self._delegate is not None:
            self._delegate.pause_writing()

    def resume_writing(self) -> None:
        if self._session is not None:
            self._session.resume_writing()
        elif self._delegate is not None:
            self._delegate.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._delegate is not None:
            self._delegate.connection_lost(exc)
            return
        self._server[1].connections.discard(self)
        self._state = _CLOSED
        self._parser = None
        self._buffer = b""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._finish()

    def eof_received(self) -> bool | None:
        return None

    def shutdown(self) -> None:
        """uvicorn is stopping: close 1012 now (a drained endpoint has already done so)."""
        if self._delegate is not None:
            return  # uvicorn shuts the delegate down itself
        if self._state == _OPEN:
            self._send_close(1012, "server restart")
        elif (
            self._state == _HANDSHAKE and self._transport is not None and (self._buffer or self.http is None)
        ):
            self._transport.write(reject_response(500))
        self._drop()

    # Handshake

    def _upgrade(self) -> None:
        request, _, rest = self._buffer.partition(b"\r\n\r\n")
        upgrade = parse_upgrade(request + b"\r\n\r\n")
        if type(upgrade) is HandshakeError:
            if upgrade.http and self.http is not None:
                self._hand_to_http()  # not an upgrade at all: plain HTTP, the app answers
            else:
                self._reject(upgrade.status)
            return
        assert isinstance(upgrade, Upgrade)
        socket = self.paths.get(upgrade.path)
        if socket is None:
            if self.http is not None:
                self._hand_to_http()  # uvicorn parses it again and runs the app's route
            else:
                self._hand_over()
            return
        self._buffer = rest
        self._parser = FrameParser(self.endpoint.max_frame_size)
        peer = _peer(self._transport)
        admitted = admit_now(
            self.endpoint, socket, upgrade.query, upgrade.headers, upgrade.subprotocols, peer
        )
        if admitted is None or type(admitted) is tuple:
            self._admitted(upgrade.key, socket, peer, admitted)
        else:
            self._spawn(self._admit_later(upgrade.key, socket, peer, admitted))  # type: ignore[arg-type]

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        """A task uvicorn waits for at shutdown."""
        task = asyncio.get_running_loop().create_task(coroutine)
        tasks = self._server[1].tasks
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    def _hand_over(self) -> None:
        """Not one of ours: uvicorn's own WebSocket protocol serves it (the app's other routes).

        uvicorn installs this protocol on the transport after handing it the request, so it
        forwards the transport's callbacks to the delegate."""
        config, server_state, app_state = self._server
        transport = self._transport
        assert transport is not None
        server_state.connections.discard(self)
        protocol = WebSocketsSansIOProtocol(config=config, server_state=server_state, app_state=app_state)
        protocol.connection_made(transport)
        request, self._buffer = self._buffer, b""
        self._delegate = protocol
        self._state = _DELEGATED
        self._transport = None
        protocol.data_received(request)

    def _hand_to_http(self) -> None:
        """The connection is plain HTTP (or another WebSocket route): from now on the HTTP
        protocol is the transport's protocol, and it parses what was received so far."""
        assert self.http is not None
        config, server_state, app_state = self._server
        transport = self._transport
        assert transport is not None
        server_state.connections.discard(self)
        protocol = self.http(config=config, server_state=server_state, app_state=app_state)  # type: ignore[call-arg]
        transport.set_protocol(protocol)
        protocol.connection_made(transport)
        data, self._buffer = self._buffer, b""
        self._state = _CLOSED
        self._transport = None
        protocol.data_received(data)

    def _reject(self, status: int) -> None:
        if self._transport is not None:
            self._transport.write(reject_response(status))
        self._drop()

    async def _admit_later(
        self, key: str, socket: Socket, peer: tuple[str, int] | None, admitted: Awaitable[Admitted | None]
    ) -> None:
        outcome = await admitted
        if self._state != _HANDSHAKE or self._transport is None:
            return  # the client left while the connect hook ran
        self._admitted(key, socket, peer, outcome)

    def _admitted(
        self, key: str, socket: Socket, peer: tuple[str, int] | None, admitted: Admitted | None
    ) -> None:
        """Answer the upgrade (101 or 403) and start the session."""
        transport = self._transport
        assert transport is not None
        if admitted is None:
            self._reject(403)
            return
        accepted, subprotocol = admitted
        transport.write(accept_response(key, subprotocol, _header_lines(self._server[1].default_headers)))
        session = self._session = Session(
            self.endpoint, socket, accepted.serializer, accepted.assigns, accepted.socket_id, peer, self
        )
        subscribing = session.start_now()
        if subscribing is None:
            self._open()
        else:
            self._spawn(self._open_later(subscribing))

    async def _open_later(self, subscribing: Awaitable[None]) -> None:
        await subscribing
        if self._state != _HANDSHAKE:  # lost while subscribing
            self._finish()
            return
        self._open()

    def _open(self) -> None:
        self._state = _OPEN
        early, self._buffer = self._buffer, b""
        if early:
            self.data_received(early)

    # Transport for the session

    wire = True

    def write(self, frames: list[Frame]) -> None:
        transport = self._transport
        if self._state != _OPEN or transport is None:
            return
        if len(frames) == 1:
            transport.write(frames[0])  # type: ignore[arg-type]
        else:
            transport.write(b"".join(frames))  # type: ignore[arg-type]
        if transport.get_write_buffer_size() > self.max_buffer and self._session is not None:
            self._session.slow_consumer(len(frames))

    def close(self, code: int, reason: str) -> None:
        if self._state != _OPEN:
            return
        self._send_close(code, reason)
        self._state = _CLOSING
        self._timer = asyncio.get_running_loop().call_later(CLOSE_TIMEOUT, self._abort)
        self._finish()

    def _send_close(self, code: int, reason: str) -> None:
        if self._transport is not None and self._state == _OPEN:
            self._transport.write(close_frame(code, reason))
            self._state = _CLOSING

    def _drop(self) -> None:
        """Close the TCP connection after what is buffered (connection_lost follows)."""
        if self._transport is not None:
            self._transport.close()
        self._finish()

    def _abort(self) -> None:
        self._timer = None
        if self._transport is not None:
            self._transport.abort()

    def _finish(self) -> None:
        """End the session once (its channels terminate in a task uvicorn waits for at shutdown)."""
        session, self._session = self._session, None
        if session is not None:
            self._spawn(session.finish())


_HEADER_LINES: list[Any] = [
    None,
    b"",
]  # uvicorn's default headers (a list it replaces when they change), encoded


def _header_lines(headers: list[tuple[bytes, bytes]]) -> bytes:
    if headers is not _HEADER_LINES[0]:
        _HEADER_LINES[:] = [headers, b"".join(name + b": " + value + b"\r\n" for name, value in headers)]
    return _HEADER_LINES[1]  # type: ignore[no-any-return]


def _peer(transport: asyncio.BaseTransport | None) -> tuple[str, int] | None:
    if transport is None:
        return None
    address = transport.get_extra_info("peername")
    if isinstance(address, tuple) and len(address) >= 2:
        return (str(address[0]), int(address[1]))
    return None
