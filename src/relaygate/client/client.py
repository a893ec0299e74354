"""Connection supervisor of the asyncio Phoenix client: connect, heartbeat, reconnect, dispatch.

One supervisor task per client owns the connection loop. Each open connection has a reader
task (decode and dispatch in order), a writer task (one ordered outbound queue) and a heartbeat
task. Channels are driven synchronously from the reader, like phoenix.js callbacks.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import quote

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus
from websockets.typing import Subprotocol

from relaygate.client.channel import ChannelState, ClientChannel
from relaygate.client.errors import ConnectError
from relaygate.protocol import V1, V2, Frame, Message, ProtocolError

log = logging.getLogger(__name__)

AUTH_TOKEN_PREFIX = "base64url.bearer.phx."  # noqa: S105 (a protocol prefix, not a secret)
_RECONNECT_STEPS = (0.01, 0.05, 0.1, 0.15, 0.2, 0.25, 0.5, 1.0, 2.0)
_REJOIN_STEPS = (1.0, 2.0, 5.0)


def default_reconnect_after(tries: int) -> float:
    """phoenix.js socket backoff in seconds: 10, 50, 100, 150, 200, 250, 500, 1000, 2000, then 5000 ms."""
    return _RECONNECT_STEPS[tries - 1] if 1 <= tries <= len(_RECONNECT_STEPS) else 5.0


def default_rejoin_after(tries: int) -> float:
    """phoenix.js channel rejoin backoff in seconds: 1, 2, 5, then 10."""
    return _REJOIN_STEPS[tries - 1] if 1 <= tries <= len(_REJOIN_STEPS) else 10.0


Params = Mapping[str, Any]


def encode_params(params: Params, prefix: str | None = None) -> str:
    """Query string like phoenix.js `Ajax.serialize`: nested maps become `k[sub]=v`."""
    parts: list[str] = []
    for key, value in params.items():
        name = f"{prefix}[{key}]" if prefix else str(key)
        if isinstance(value, Mapping):
            nested = encode_params(value, name)
            if nested:
                parts.append(nested)
            continue
        text = ("true" if value else "false") if isinstance(value, bool) else str(value)
        parts.append(f"{quote(name, safe='')}={quote(text, safe='')}")
    return "&".join(parts)


def auth_token_protocol(token: str) -> str:
    """The Sec-WebSocket-Protocol entry phoenix.js sends for `authToken` (standard base64, no padding)."""
    return AUTH_TOKEN_PREFIX + base64.b64encode(token.encode()).decode().rstrip("=")


class Client:
    """A Phoenix Channels socket (phoenix.js `Socket`) on `websockets`.

    `params` and `auth_token` may be callables, evaluated on every (re)connect. `await connect()`
    raises ConnectError when the first attempt fails; later drops reconnect with backoff and
    rejoin every channel with a new join_ref.
    """

    def __init__(
        self,
        url: str,
        params: Params | Callable[[], Params] | None = None,
        auth_token: str | Callable[[], str] | None = None,
        vsn: str = "2.0.0",
        heartbeat_interval: float = 30.0,
        reconnect: bool = True,
        timeout: float = 10.0,
        reconnect_after: Callable[[int], float] = default_reconnect_after,
        rejoin_after: Callable[[int], float] = default_rejoin_after,
        event_buffer: int = 1000,
        gap_grace: float = 1.0,
        refill_gaps: bool = False,
    ) -> None:
        if not vsn.startswith(("1.", "2.")):
            raise ValueError(f"unsupported serializer version {vsn!r}; use 1.x or 2.x")
        self.url = url.rstrip("/")
        self.vsn = vsn
        self.heartbeat_interval = heartbeat_interval
        self.reconnect = reconnect
        self.timeout = timeout
        self.reconnect_after = reconnect_after
        self.rejoin_after = rejoin_after
        self._params = params
        self._auth_token = auth_token
        self._event_buffer = event_buffer
        self.gap_grace = gap_grace
        """Seconds a skipped history position may still arrive before the channel rejoins to fill it."""
        self.refill_gaps = refill_gaps
        """Rejoin when an offset is skipped while connected. Off by default: ``broadcast_from``
        and ``handle_out`` skip offsets legitimately (a socket never gets its own
        ``broadcast_from``), and a node that lost its Redis subscription catches up by itself.
        A new epoch while connected always leads to a rejoin (the stream may have lost data)."""
        self._ref = 0
        self._channels: list[ClientChannel] = []
        self._ws: ClientConnection | None = None
        self._outbox: asyncio.Queue[str | bytes] | None = None
        self._supervisor: asyncio.Task[None] | None = None
        self._closing = False
        self._pending_heartbeat: str | None = None
        self._heartbeat_replied: asyncio.Event | None = None
        self._lost_reason = "connection_closed"
        self._on_open: list[Callable[[], object]] = []
        self._on_close: list[Callable[[int | None, str], object]] = []
        self._on_error: list[Callable[[BaseException], object]] = []

    # -- public API ------------------------------------------------------------------------------

    @property
    def is_connected(self) -> bool:
        return self._ws is not None

    def endpoint_url(self) -> str:
        """The WebSocket URL: `<url>/websocket?<params>&vsn=<vsn>` (vsn last, as phoenix.js)."""
        params = self._params() if callable(self._params) else (self._params or {})
        query = encode_params(params)
        vsn = f"vsn={quote(self.vsn, safe='')}"
        return f"{self.url}/websocket?{query + '&' if query else ''}{vsn}"

    async def connect(self) -> None:
        """Open the connection; return once it is open. Reconnects run in the background."""
        if self._supervisor is not None and not self._supervisor.done():
            return
        self._closing = False
        opened: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._supervisor = asyncio.create_task(self._run(opened), name="relaygate-client")
        await opened

    async def close(self) -> None:
        """Close with 1000 and stop reconnecting; pending joins and pushes fail with ChannelClosed."""
        self._closing = True
        ws = self._ws
        if ws is not None:
            await ws.close(1000, "client closed")
        supervisor, self._supervisor = self._supervisor, None
        if supervisor is not None:
            supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await supervisor
        for channel in list(self._channels):
            channel._on_client_closed()

    def channel(self, topic: str, params: dict[str, Any] | None = None) -> ClientChannel:
        """A new channel object for `topic` (join it with `await channel.join()`)."""
        chan = ClientChannel(self, topic, params, self._event_buffer)
        self._channels.append(chan)
        return chan

    def on_open(self, callback: Callable[[], object]) -> None:
        self._on_open.append(callback)

    def on_close(self, callback: Callable[[int | None, str], object]) -> None:
        """`callback(code, reason)` after each connection closes (code None if it never opened)."""
        self._on_close.append(callback)

    def on_error(self, callback: Callable[[BaseException], object]) -> None:
        """`callback(exc)` for each failed connection attempt."""
        self._on_error.append(callback)

    # -- used by channels ---------------------------------------------------------------------------

    def _make_ref(self) -> str:
        self._ref += 1
        return str(self._ref)

    def _encode(self, message: Message) -> Frame:
        """A client frame: V2 text or kind-0 binary; V1 objects (the server takes ref as join_ref)."""
        if self.vsn.startswith("2."):
            return V2.encode_client(message)
        return V1.encode(message.join_ref, message.ref, message.topic, message.event, message.payload)

    def _decode(self, data: str | bytes) -> Message | ProtocolError:
        return V2.decode_server(data) if self.vsn.startswith("2.") else V1.decode(data)

    def _send(self, message: Message) -> bool:
        """Encode (EncodeError on bad payloads) and queue on the open connection; False if none."""
        data = self._encode(message)
        if self._outbox is None:
            return False
        self._outbox.put_nowait(data)
        return True

    def _remove(self, channel: ClientChannel) -> None:
        if channel in self._channels:
            self._channels.remove(channel)

    def _leave_open_topic(self, joining: ClientChannel) -> None:
        """Leave another channel object of the same topic first, as phoenix.js does."""
        for chan in list(self._channels):
            if (
                chan is not joining
                and chan.topic == joining.topic
                and chan.state
                in (
                    ChannelState.JOINED,
                    ChannelState.JOINING,
                )
            ):
                chan.state = ChannelState.LEAVING
                if chan.join_ref is not None:
                    self._send(Message(chan.join_ref, self._make_ref(), chan.topic, "phx_leave", {}))
                chan._close("leave")

    # -- connection loop ---------------------------------------------------------------------------

    async def _open(self) -> ClientConnection:
        """One connection attempt; every failure becomes ConnectError, so the supervisor survives
        it and a first ``connect()`` raises instead of waiting forever."""
        subprotocols = None
        try:
            if self._auth_token is not None:
                token = self._auth_token() if callable(self._auth_token) else self._auth_token
                subprotocols = [Subprotocol("phoenix"), Subprotocol(auth_token_protocol(token))]
            ws = await connect(
                self.endpoint_url(),
                subprotocols=subprotocols,
                ping_interval=None,
                close_timeout=2.0,
                max_size=None,
                open_timeout=self.timeout,
            )
        except InvalidStatus as exc:
            raise ConnectError(
                f"server refused the upgrade with HTTP {exc.response.status_code}", exc.response.status_code
            ) from None
        except (OSError, InvalidHandshake, TimeoutError) as exc:
            raise ConnectError(f"connection failed: {exc}") from exc
        except Exception as exc:  # a bad URL, or a params/auth_token callable that raised
            # Only the type: the message of a URL error repeats the URL, whose params may hold a token.
            raise ConnectError(f"cannot connect: {type(exc).__name__}") from exc
        if subprotocols is not None and ws.subprotocol != "phoenix":
            await ws.close(1002, "no subprotocol")
            raise ConnectError("server sent no phoenix subprotocol for the auth token")
        return ws

    async def _run(self, opened: asyncio.Future[None]) -> None:
        tries = 0
        while not self._closing:
            try:
                ws = await self._open()
            except ConnectError as exc:
                if not opened.done():
                    opened.set_exception(exc)
                    return
                self._notify(self._on_error, exc)
                self._connection_lost("connection_error")
                tries += 1
                await asyncio.sleep(self.reconnect_after(tries))
                continue
            tries = 0
            reason = await self._serve(ws, opened)
            self._connection_lost(reason)
            self._notify(self._on_close, ws.close_code, ws.close_reason or "")
            if self._closing or not self.reconnect:
                break
            tries += 1
            await asyncio.sleep(self.reconnect_after(tries))
        if not self._closing:
            for channel in list(self._channels):
                channel._on_client_closed()

    async def _serve(self, ws: ClientConnection, opened: asyncio.Future[None]) -> str:
        """Run one open connection until it closes; return the channels' error reason."""
        self._ws = ws
        self._outbox = outbox = asyncio.Queue[str | bytes]()
        self._pending_heartbeat = None
        self._lost_reason = "connection_closed"
        writer = asyncio.create_task(self._write(ws, outbox))
        heartbeat = asyncio.create_task(self._heartbeat(ws))
        self._notify(self._on_open)
        for channel in list(self._channels):
            channel._on_connection_open()
        if not opened.done():
            opened.set_result(None)
        try:
            await self._read(ws)
        finally:
            self._ws = None
            self._outbox = None
            writer.cancel()
            heartbeat.cancel()
            await asyncio.gather(writer, heartbeat, return_exceptions=True)
        return self._lost_reason

    async def _read(self, ws: ClientConnection) -> None:
        try:
            async for data in ws:
                self._handle(data)
        except ConnectionClosed:
            pass

    async def _write(self, ws: ClientConnection, outbox: asyncio.Queue[str | bytes]) -> None:
        with contextlib.suppress(ConnectionClosed):
            while True:
                await ws.send(await outbox.get())

    async def _heartbeat(self, ws: ClientConnection) -> None:
        """Send a heartbeat one interval after open / after each reply; close if none comes back."""
        while True:
            await asyncio.sleep(self.heartbeat_interval)
            replied = self._heartbeat_replied = asyncio.Event()
            self._pending_heartbeat = self._make_ref()
            self._send(Message(None, self._pending_heartbeat, "phoenix", "heartbeat", {}))
            try:
                await asyncio.wait_for(replied.wait(), self.heartbeat_interval)
            except TimeoutError:
                self._pending_heartbeat = None
                self._lost_reason = "heartbeat_timeout"
                log.warning("heartbeat timeout; reconnecting")
                await ws.close(1000, "heartbeat timeout")
                return

    def _handle(self, data: str | bytes) -> None:
        message = self._decode(data)
        if isinstance(message, ProtocolError):
            log.warning("dropping undecodable server frame: %s", message.reason)
            return
        if message.ref is not None and message.ref == self._pending_heartbeat:
            self._pending_heartbeat = None
            if self._heartbeat_replied is not None:
                self._heartbeat_replied.set()
        for channel in list(self._channels):
            if channel._is_member(message):
                channel._dispatch(message)

    def _connection_lost(self, reason: str) -> None:
        for channel in list(self._channels):
            channel._on_connection_lost(reason)

    def _notify(self, callbacks: list[Callable[..., object]], *args: Any) -> None:
        for callback in list(callbacks):
            try:
                callback(*args)
            except Exception:
                log.exception("client callback failed")
