"""Cheap load-generator clients: raw WebSocket connections writing protocol frames by hand.

:class:`RawWebSocket` is a minimal RFC 6455 client on an ``asyncio.Protocol`` (handshake, frame
parser, masking with the ``websockets`` C speedup). It replaced ``websockets.asyncio.client``
because that client cost more CPU than the servers under test (measured on the bare peer: 15.6 µs
per received fan-out frame and 65 µs per round trip, see RESULTS.md), which made the generator the
bottleneck on 2 cores. :class:`PhoenixClient` speaks Phoenix V2 JSON and :class:`SocketIOClient`
Engine.IO 4 / Socket.IO 5 text packets, behind one small interface so a scenario drives any system
the same way: ``join``, ``push`` (awaits the reply or ack), ``heartbeat``, ``on_broadcast``, ``close``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import os
import socket
import time
from collections import deque
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import orjson
from websockets.speedups import apply_mask

CONNS_PER_SOURCE = 25_000
"""Loopback connections per source address: the ephemeral port range holds ~28k per address."""

IP_BIND_ADDRESS_NO_PORT = getattr(socket, "IP_BIND_ADDRESS_NO_PORT", 24)  # Linux >= 4.2

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

Broadcast = Callable[[str, Any], None]


class PushFailed(Exception):
    pass


def source_host(index: int) -> str:
    """Client source address for the ``index``-th connection of a run: 127.0.0.1, then .2, .3 ..."""
    return f"127.0.0.{1 + index // CONNS_PER_SOURCE}"


class RawWebSocket(asyncio.Protocol):
    """A WebSocket client connection: text frames in (``on_message``), masked text frames out."""

    def __init__(self, host: str, target: str, on_message: Callable[[bytes], None]) -> None:
        self.request = (
            f"GET {target} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {{key}}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        self.on_message = on_message
        self.transport: asyncio.Transport | None = None
        self.buffer = b""
        self.fragments: list[bytes] = []
        self.is_open = False
        loop = asyncio.get_running_loop()
        self.opened: asyncio.Future[None] = loop.create_future()
        self.closed: asyncio.Future[None] = loop.create_future()
        self.mask = os.urandom(4)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's transports are not asyncio.Transport
        self.key = base64.b64encode(os.urandom(16))
        transport.write(self.request.format(key=self.key.decode()).encode())

    def connection_lost(self, exc: Exception | None) -> None:
        self.is_open = False
        error = exc or ConnectionError("connection closed")
        if not self.opened.done():
            self.opened.set_exception(error)
        if not self.closed.done():
            self.closed.set_result(None)

    def data_received(self, data: bytes) -> None:
        buffer = self.buffer + data if self.buffer else data
        if not self.is_open:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                self.buffer = buffer
                return
            self._handshake(buffer[:end])
            buffer = buffer[end + 4 :]
        self.buffer = self._frames(buffer)

    def _handshake(self, head: bytes) -> None:
        accept = base64.b64encode(hashlib.sha1(self.key + GUID).digest())
        lines = head.split(b"\r\n")
        headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(b":") for line in lines[1:])}
        if lines[0].split(b" ")[1:2] != [b"101"] or headers.get(b"sec-websocket-accept") != accept:
            self.opened.set_exception(
                ConnectionError(f"upgrade refused: {lines[0].decode(errors='replace')}")
            )
            assert self.transport is not None
            self.transport.close()
            return
        self.is_open = True
        self.opened.set_result(None)

    def _frames(self, buffer: bytes) -> bytes:
        """Parse every complete frame in ``buffer``; return the incomplete tail."""
        size, at = len(buffer), 0
        while size - at >= 2:
            first, length = buffer[at], buffer[at + 1] & 0x7F
            head = 2
            if length == 126:
                if size - at < 4:
                    break
                length, head = int.from_bytes(buffer[at + 2 : at + 4], "big"), 4
            elif length == 127:
                if size - at < 10:
                    break
                length, head = int.from_bytes(buffer[at + 2 : at + 10], "big"), 10
            if size - at < head + length:
                break
            payload = buffer[at + head : at + head + length]
            at += head + length
            self._frame(first, payload)
        return buffer[at:]

    def _frame(self, first: int, payload: bytes) -> None:
        opcode = first & 0x0F
        if opcode in (0, 1, 2):
            if first & 0x80:
                if self.fragments:
                    payload, self.fragments = b"".join([*self.fragments, payload]), []
                self.on_message(payload)
            else:
                self.fragments.append(payload)
        elif opcode == 9:
            self._write(0xA, payload)
        elif opcode == 8:
            self._write(0x8, payload[:2])
            self.is_open = False
            assert self.transport is not None
            self.transport.close()

    def _write(self, opcode: int, payload: bytes) -> None:
        if self.transport is None or self.transport.is_closing():
            raise ConnectionError("connection closed")
        length = len(payload)
        if length < 126:
            header = bytes((0x80 | opcode, 0x80 | length))
        elif length < 65536:
            header = bytes((0x80 | opcode, 0xFE)) + length.to_bytes(2, "big")
        else:
            header = bytes((0x80 | opcode, 0xFF)) + length.to_bytes(8, "big")
        self.transport.write(header + self.mask + apply_mask(payload, self.mask))

    def send(self, text: str | bytes) -> None:
        self._write(0x1, text.encode() if isinstance(text, str) else text)

    async def close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            with contextlib.suppress(ConnectionError):
                self._write(0x8, (1000).to_bytes(2, "big"))
            self.transport.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(asyncio.shield(self.closed), 2)


def _client_socket(source: str) -> socket.socket:
    """A non-blocking TCP socket bound to ``source``; the port is picked at connect time.

    A plain ``bind((source, 0))`` reserves a port exclusively and the kernel's search for a free
    one grows with every bound socket (client CPU per connect went up 10x at 5k sockets per
    process); ``IP_BIND_ADDRESS_NO_PORT`` defers the choice to ``connect``, keyed by the 4-tuple.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind((source, 0))
    sock.setblocking(False)
    return sock


async def open_ws(
    url: str, source: str, on_message: Callable[[bytes], None], timeout: float = 60
) -> RawWebSocket:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    loop = asyncio.get_running_loop()
    sock = _client_socket(source)
    try:
        await asyncio.wait_for(loop.sock_connect(sock, (host, port)), timeout)
        _, ws = await loop.create_connection(
            lambda: RawWebSocket(f"{host}:{port}", target, on_message), sock=sock
        )
    except BaseException:
        sock.close()
        raise
    await asyncio.wait_for(asyncio.shield(ws.opened), timeout)
    return ws


def _discard(event: str, payload: Any) -> None:
    pass


class WireClient:
    """One connection: resolves pending replies by key and hands broadcasts to ``on_broadcast``."""

    def __init__(self) -> None:
        self.ws: RawWebSocket | None = None
        self.pending: dict[Any, asyncio.Future[Any]] = {}
        self.callbacks: dict[Any, Callable[[Any], None]] = {}
        self.on_broadcast: Broadcast = _discard
        self.heartbeats_sent = 0
        self.heartbeats_ok = 0
        self._ref = 0

    async def connect(self, url: str, source: str = "127.0.0.1") -> None:
        self.ws = await open_ws(url, source, self.handle)
        self.ws.closed.add_done_callback(self._closed)

    @property
    def is_open(self) -> bool:
        return self.ws is not None and self.ws.is_open

    def _closed(self, _: object) -> None:
        self.callbacks.clear()
        for future in self.pending.values():
            if not future.done():
                future.set_exception(ConnectionError("connection closed"))
        self.pending.clear()

    def next_ref(self) -> int:
        self._ref += 1
        return self._ref

    def send(self, frame: str | bytes) -> None:
        assert self.ws is not None
        self.ws.send(frame)

    def resolve(self, key: Any, value: Any) -> None:
        done = self.callbacks.pop(key, None)
        if done is not None:
            done(value)
            return
        future = self.pending.pop(key, None)
        if future is not None and not future.done():
            future.set_result(value)

    async def request(self, key: Any, frame: str | bytes, timeout: float | None) -> Any:
        """Send ``frame`` and await the reply keyed ``key``; ``timeout=None`` saves the timer in hot loops
        (a lost connection still fails the future, and the worker step timeout bounds the rest)."""
        future = asyncio.get_running_loop().create_future()
        self.pending[key] = future
        self.send(frame)
        return await (future if timeout is None else asyncio.wait_for(future, timeout))

    def handle(self, raw: bytes) -> None:
        raise NotImplementedError

    async def join(self, topic: str, timeout: float = 60) -> None:
        raise NotImplementedError

    async def push(self, topic: str, event: str, payload: Any, timeout: float | None = 60) -> Any:
        raise NotImplementedError

    def push_frame(self, topic: str, event: str, payload: Any) -> tuple[Any, bytes]:
        """The key its reply resolves and the frame of one push on a joined ``topic``."""
        raise NotImplementedError

    def push_then(self, topic: str, event: str, payload: Any, done: Callable[[Any], None]) -> None:
        """Push and call ``done(reply)`` from the reply's ``data_received``: no future and no task
        per push, so a closed-loop generator costs the least CPU per round trip."""
        key, frame = self.push_frame(topic, event, payload)
        self.callbacks[key] = done
        self.send(frame)

    def heartbeat(self) -> None:
        """Send the protocol's client heartbeat if it has one (socket.io's pings come from the server)."""

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()


class PhoenixClient(WireClient):
    """Phoenix V2 JSON, one channel per join; refs are integers rendered as strings."""

    def __init__(self) -> None:
        super().__init__()
        self.join_refs: dict[str, str] = {}
        self.last_ref: str | None = None
        """The ref of the last broadcast received (a position on a topic with history)."""

    def handle(self, raw: bytes) -> None:
        message = orjson.loads(raw)
        ref = message[1]
        if ref is None or message[3] != "phx_reply":  # a broadcast (its ref is a history position)
            self.last_ref = ref
            self.on_broadcast(message[3], message[4])
        elif ref[0] == "h":
            self.heartbeats_ok += message[4]["status"] == "ok"
        else:
            self.resolve(ref, message[4])

    async def _call(
        self, join_ref: str | None, topic: str, event: str, payload: Any, timeout: float | None
    ) -> Any:
        ref = str(self.next_ref())
        frame = orjson.dumps([join_ref, ref, topic, event, payload]).decode()
        reply = await self.request(ref, frame, timeout)
        if reply["status"] != "ok":
            raise PushFailed(f"{event} on {topic}: {reply}")
        return reply["response"]

    async def join(self, topic: str, timeout: float = 60, payload: Any = None) -> Any:
        """Join; returns the reply's response."""
        join_ref = str(self._ref + 1)
        response = await self._call(join_ref, topic, "phx_join", payload or {}, timeout)
        self.join_refs[topic] = join_ref
        return response

    async def leave(self, topic: str, timeout: float = 60) -> None:
        """``phx_leave``; awaits its ok reply (the server's ``phx_close`` that follows is ignored)."""
        await self._call(self.join_refs.pop(topic), topic, "phx_leave", {}, timeout)

    async def push(self, topic: str, event: str, payload: Any, timeout: float | None = 60) -> Any:
        return await self._call(self.join_refs[topic], topic, event, payload, timeout)

    def push_frame(self, topic: str, event: str, payload: Any) -> tuple[Any, bytes]:
        ref = str(self.next_ref())
        return ref, orjson.dumps([self.join_refs[topic], ref, topic, event, payload])

    def heartbeat(self) -> None:
        self.heartbeats_sent += 1
        self.send(f'[null,"h{self.next_ref()}","phoenix","heartbeat",{{}}]')


class SocketIOClient(WireClient):
    """Engine.IO 4 over WebSocket only: ``42[event,data]`` events, ``42<id>[...]``/``43<id>[...]`` acks.

    The server pings (``2``) and the client answers (``3``): that is socket.io's heartbeat.
    """

    def __init__(self) -> None:
        super().__init__()
        self.connected: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    async def connect(self, url: str, source: str = "127.0.0.1") -> None:
        await super().connect(url, source)
        self.send("40")
        await asyncio.wait_for(self.connected, 60)

    def handle(self, raw: bytes) -> None:
        kind = raw[:1]
        if kind == b"4":
            packet = raw[1:2]
            if packet == b"2":
                event, data = orjson.loads(raw[2:])
                self.on_broadcast(event, data)
            elif packet == b"3":
                bracket = raw.index(b"[")
                self.resolve(int(raw[2:bracket]), orjson.loads(raw[bracket:]))
            elif packet == b"0" and not self.connected.done():
                self.connected.set_result(None)
        elif kind == b"2":
            self.heartbeats_sent += 1
            self.heartbeats_ok += 1
            self.send("3")

    async def _emit(self, event: str, data: Any, timeout: float | None) -> Any:
        ack = self.next_ref()
        frame = f"42{ack}" + orjson.dumps([event, data]).decode()
        response = await self.request(ack, frame, timeout)
        return response[0] if response else None

    async def join(self, topic: str, timeout: float = 60) -> None:
        await self._emit("join", topic, timeout)

    async def push(self, topic: str, event: str, payload: Any, timeout: float | None = 60) -> Any:
        if event == "publish":
            return await self._emit("publish", {"topic": topic, "payload": payload}, timeout)
        return await self._emit(event, payload, timeout)

    def push_frame(self, topic: str, event: str, payload: Any) -> tuple[Any, bytes]:
        ack = self.next_ref()
        return ack, b"42%d" % ack + orjson.dumps([event, payload])


CLIENTS: dict[str, type[WireClient]] = {"phoenix": PhoenixClient, "socketio": SocketIOClient}


async def open_client(protocol: str, url: str, source: str = "127.0.0.1") -> WireClient:
    client = CLIENTS[protocol]()
    await client.connect(url, source)
    return client


async def open_joined(
    protocol: str,
    url: str,
    topic: str,
    indices: range,
    concurrency: int = 64,
    on_joined: Callable[[WireClient], None] | None = None,
    query: Callable[[int], str] | None = None,
) -> tuple[list[WireClient], list[str]]:
    """Connect and join ``len(indices)`` clients, ``concurrency`` handshakes in flight at a time
    (``query(index)``: more query parameters for that client's URL, e.g. its token).

    ``concurrency`` tasks pull indices from one iterator (a semaphore with thousands of waiters
    costs O(waiters) per acquire). Returns the joined clients and one error string per failure.
    """
    clients: list[WireClient] = []
    errors: list[str] = []
    todo = iter(indices)

    async def runner() -> None:
        for index in todo:
            try:
                target = url if query is None else url + query(index)
                client = await open_client(protocol, target, source_host(index))
                await client.join(topic)
            except Exception as exc:
                errors.append(f"{type(exc).__name__}: {exc}")
                continue
            clients.append(client)
            if on_joined is not None:
                on_joined(client)

    await asyncio.gather(*(runner() for _ in range(min(concurrency, len(indices)))))
    if errors and not clients:
        raise ConnectionError(f"all {len(errors)} connections failed, e.g. {errors[0]}")
    return clients, errors


class Heartbeats:
    """phoenix.js timing: a client heartbeats ``interval`` seconds after it joined, then every ``interval``.

    One task and one deque per process: every client has the same interval, so appending keeps the
    deque ordered by due time and each tick only looks at the clients that are due.
    """

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self.due: deque[tuple[float, WireClient]] = deque()
        self.task: asyncio.Task[None] | None = None

    def add(self, client: WireClient) -> None:
        self.due.append((time.monotonic() + self.interval, client))

    def start(self) -> None:
        self.task = asyncio.get_running_loop().create_task(self._run())

    def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()

    async def _run(self) -> None:
        tick = min(0.05, self.interval / 10)
        while True:
            await asyncio.sleep(tick)
            now = time.monotonic()
            while self.due and self.due[0][0] <= now:
                due, client = self.due.popleft()
                if client.is_open:
                    client.heartbeat()
                    self.due.append((due + self.interval, client))
