"""Cheap load-generator clients: raw ``websockets`` connections writing protocol frames by hand.

:class:`PhoenixClient` speaks Phoenix V2 JSON (``[join_ref, ref, topic, event, payload]``) and
:class:`SocketIOClient` speaks Engine.IO 4 / Socket.IO 5 text packets. Both have the same small
interface so a scenario drives any system the same way: ``join``, ``push`` (awaits the reply or
ack), ``heartbeat``, ``on_broadcast`` and ``close``. No client library sits in between, so the
generator spends its CPU on sockets and JSON, not on framework layers.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

import orjson
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

CONNS_PER_SOURCE = 25_000
"""Loopback connections per source address: the ephemeral port range holds ~28k per address."""

Broadcast = Callable[[str, Any], None]


class PushFailed(Exception):
    pass


def source_host(index: int) -> str:
    """Client source address for the ``index``-th connection of a run: 127.0.0.1, then .2, .3 ..."""
    return f"127.0.0.{1 + index // CONNS_PER_SOURCE}"


async def open_ws(url: str, source: str) -> ClientConnection:
    return await connect(
        url,
        local_addr=(source, 0),
        compression=None,
        ping_interval=None,
        proxy=None,
        open_timeout=60,
        close_timeout=2,
        user_agent_header=None,
        max_size=None,
    )


def _discard(event: str, payload: Any) -> None:
    pass


class WireClient:
    """A connection with one reader task that resolves pending replies and hands broadcasts on."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.pending: dict[Any, asyncio.Future[Any]] = {}
        self.on_broadcast: Broadcast = _discard
        self.heartbeats_sent = 0
        self.heartbeats_ok = 0
        self._ref = 0
        self.reader = asyncio.get_running_loop().create_task(self._read())

    def next_ref(self) -> int:
        self._ref += 1
        return self._ref

    async def _read(self) -> None:
        try:
            async for raw in self.ws:
                self.handle(raw)
        except ConnectionClosed:
            pass
        finally:
            for future in self.pending.values():
                if not future.done():
                    future.set_exception(ConnectionError("connection closed"))
            self.pending.clear()

    def resolve(self, key: Any, value: Any) -> None:
        future = self.pending.pop(key, None)
        if future is not None and not future.done():
            future.set_result(value)

    async def request(self, key: Any, frame: str, timeout: float) -> Any:
        future = asyncio.get_running_loop().create_future()
        self.pending[key] = future
        await self.ws.send(frame)
        return await asyncio.wait_for(future, timeout)

    def handle(self, raw: str | bytes) -> None:
        raise NotImplementedError

    async def join(self, topic: str, timeout: float = 60) -> None:
        raise NotImplementedError

    async def push(self, topic: str, event: str, payload: Any, timeout: float = 60) -> Any:
        raise NotImplementedError

    async def heartbeat(self) -> None:
        """Send the protocol's client heartbeat if it has one (socket.io's pings come from the server)."""

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.ws.close()
        self.reader.cancel()


class PhoenixClient(WireClient):
    """Phoenix V2 JSON, one channel per join; refs are integers rendered as strings."""

    def __init__(self, ws: ClientConnection) -> None:
        super().__init__(ws)
        self.join_refs: dict[str, str] = {}

    def handle(self, raw: str | bytes) -> None:
        message = orjson.loads(raw)
        ref = message[1]
        if ref is None:
            self.on_broadcast(message[3], message[4])
        elif ref[0] == "h":
            self.heartbeats_ok += message[4]["status"] == "ok"
        else:
            self.resolve(ref, message[4])

    async def _call(self, join_ref: str | None, topic: str, event: str, payload: Any, timeout: float) -> Any:
        ref = str(self.next_ref())
        frame = orjson.dumps([join_ref, ref, topic, event, payload]).decode()
        reply = await self.request(ref, frame, timeout)
        if reply["status"] != "ok":
            raise PushFailed(f"{event} on {topic}: {reply}")
        return reply["response"]

    async def join(self, topic: str, timeout: float = 60) -> None:
        join_ref = str(self._ref + 1)
        await self._call(join_ref, topic, "phx_join", {}, timeout)
        self.join_refs[topic] = join_ref

    async def push(self, topic: str, event: str, payload: Any, timeout: float = 60) -> Any:
        return await self._call(self.join_refs[topic], topic, event, payload, timeout)

    async def heartbeat(self) -> None:
        self.heartbeats_sent += 1
        await self.ws.send(f'[null,"h{self.next_ref()}","phoenix","heartbeat",{{}}]')


class SocketIOClient(WireClient):
    """Engine.IO 4 over WebSocket only: ``42[event,data]`` events, ``42<id>[...]``/``43<id>[...]`` acks.

    The server pings (``2``) and the client answers (``3``): that is socket.io's heartbeat.
    """

    def __init__(self, ws: ClientConnection) -> None:
        super().__init__(ws)
        self.connected: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def handle(self, raw: str | bytes) -> None:
        text = raw if isinstance(raw, str) else raw.decode()
        kind = text[0]
        if kind == "4":
            packet = text[1]
            if packet == "2":
                event, data = orjson.loads(text[2:])
                self.on_broadcast(event, data)
            elif packet == "3":
                bracket = text.index("[")
                self.resolve(int(text[2:bracket]), orjson.loads(text[bracket:]))
            elif packet == "0" and not self.connected.done():
                self.connected.set_result(None)
        elif kind == "2":
            self.heartbeats_sent += 1
            self.heartbeats_ok += 1
            asyncio.get_running_loop().create_task(self.ws.send("3"))

    async def open(self, timeout: float = 60) -> None:
        await self.ws.send("40")
        await asyncio.wait_for(self.connected, timeout)

    async def _emit(self, event: str, data: Any, timeout: float) -> Any:
        ack = self.next_ref()
        frame = f"42{ack}" + orjson.dumps([event, data]).decode()
        response = await self.request(ack, frame, timeout)
        return response[0] if response else None

    async def join(self, topic: str, timeout: float = 60) -> None:
        await self._emit("join", topic, timeout)

    async def push(self, topic: str, event: str, payload: Any, timeout: float = 60) -> Any:
        if event == "publish":
            return await self._emit("publish", {"topic": topic, "payload": payload}, timeout)
        return await self._emit(event, payload, timeout)


async def open_client(protocol: str, url: str, source: str = "127.0.0.1") -> WireClient:
    ws = await open_ws(url, source)
    if protocol == "phoenix":
        return PhoenixClient(ws)
    if protocol == "socketio":
        client = SocketIOClient(ws)
        await client.open()
        return client
    await ws.close()
    raise ValueError(f"unknown protocol {protocol!r}")


async def open_joined(
    protocol: str, url: str, topic: str, indices: range, concurrency: int = 64
) -> tuple[list[WireClient], list[str]]:
    """Connect and join ``len(indices)`` clients, at most ``concurrency`` handshakes in flight.

    Returns the joined clients and one error string per failed connection.
    """
    gate = asyncio.Semaphore(concurrency)
    clients: list[WireClient] = []
    errors: list[str] = []

    async def one(index: int) -> None:
        async with gate:
            try:
                client = await open_client(protocol, url, source_host(index))
                await client.join(topic)
                clients.append(client)
            except Exception as exc:
                errors.append(f"{type(exc).__name__}: {exc}")

    await asyncio.gather(*(one(index) for index in indices))
    return clients, errors


async def heartbeat_loop(clients: list[WireClient], interval: float) -> None:
    """Each client heartbeats once per ``interval``, spread evenly (a steady state, not a thundering herd)."""
    if not clients:
        return
    gap = interval / len(clients)
    while True:
        for client in clients:
            await asyncio.sleep(gap)
            with contextlib.suppress(ConnectionClosed):
                await client.heartbeat()
