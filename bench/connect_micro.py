"""``python -m bench.connect_micro``: what one connect + token auth + join costs, step by step, in process.

The endpoint's own WebSocket protocol is driven with a transport that only records writes (no
sockets, no kernel, no uvicorn), first through the whole path, then each step alone, so the
figures say where the microseconds of a connect go (CPU time of this process, best of
``--repeat``). What the real server adds on top (accept, the TCP stack, the event loop's
reads and writes) is the difference to the ``idle-connections`` scenario's CPU per connect.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import gc
import os
import time
from collections.abc import Callable
from typing import Any

import orjson
from websockets.speedups import apply_mask

from bench.servers.relaygate_app import BenchChannel
from relaygate.accounts import TokenCodec
from relaygate.channels import ConnectInfo, Endpoint, Socket
from relaygate.channels.handshake import admit
from relaygate.channels.session import Session
from relaygate.channels.wire import WebSocketProtocol
from relaygate.protocol import V2
from relaygate.protocol.websocket import accept_response, parse_upgrade
from relaygate.pubsub import MemoryPubSub

KEY = "bench-connect-micro-signing-key-0123456789"
MASK = b"\x01\x02\x03\x04"


class RecordingTransport:
    """Enough of an asyncio transport for the protocol: writes are counted, never sent."""

    __slots__ = ("closed", "writes")

    def __init__(self) -> None:
        self.writes = 0
        self.closed = False

    def write(self, data: bytes) -> None:
        self.writes += 1

    def get_write_buffer_size(self) -> int:
        return 0

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 40000) if name == "peername" else default

    def set_protocol(self, protocol: Any) -> None:
        return None

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.closed = True


class ServerState:
    def __init__(self) -> None:
        self.connections: set[Any] = set()
        self.tasks: set[asyncio.Task[None]] = set()
        self.default_headers: list[tuple[bytes, bytes]] = [(b"server", b"uvicorn")]


def request(token: str | None, headers: int) -> bytes:
    """An upgrade as phoenix.js in a browser sends it (``headers`` extra browser header lines)."""
    query = "vsn=2.0.0" + (f"&token={token}" if token else "")
    lines = [
        f"GET /socket/websocket?{query} HTTP/1.1",
        "Host: 127.0.0.1:4000",
        "Upgrade: websocket",
        "Connection: Upgrade",
        "Sec-WebSocket-Key: " + base64.b64encode(os.urandom(16)).decode(),
        "Sec-WebSocket-Version: 13",
        "Origin: http://127.0.0.1:4000",
    ]
    browser = [
        "User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36",
        "Accept-Encoding: gzip, deflate, br",
        "Accept-Language: en-US,en;q=0.9",
        "Cache-Control: no-cache",
        "Pragma: no-cache",
        "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits",
        "Cookie: _ga=GA1.1.123456789.1700000000; theme=dark",
    ]
    return ("\r\n".join(lines + browser[:headers]) + "\r\n\r\n").encode()


def client_frame(message: list[Any]) -> bytes:
    payload = orjson.dumps(message)
    assert len(payload) < 126
    return bytes((0x81, 0x80 | len(payload))) + MASK + apply_mask(payload, MASK)


JOIN = client_frame(["1", "1", "bench:idle", "phx_join", {}])


def endpoint_for(codec: TokenCodec | None) -> Endpoint:
    revoked: set[str] = set()

    def connect(params: dict[str, str], info: ConnectInfo) -> dict[str, Any] | None:
        if codec is None:
            return {}
        claims = codec.verify(params.get("token", ""))
        if claims is None or claims.jti in revoked:
            return None
        return {"user_id": claims.user_id}

    endpoint = Endpoint(MemoryPubSub(), idle_timeout=60.0)
    socket = Socket("/socket", connect=connect)
    socket.channel("bench:*", BenchChannel)
    endpoint.add_socket(socket)
    return endpoint


async def settle(state: ServerState, transports: list[RecordingTransport], writes: int) -> None:
    """Run the loop until every transport got ``writes`` writes (handshake tasks, channel tasks, flushes)."""
    while state.tasks:
        await asyncio.gather(*list(state.tasks))
    while any(t.writes < writes for t in transports):
        await asyncio.sleep(0)


async def connects(count: int, requests: list[bytes], join: bool, codec: TokenCodec | None) -> float:
    """µs of CPU per connect (and join): ``count`` connections opened in batches of 64."""
    endpoint = endpoint_for(codec)
    protocol = WebSocketProtocol.bind(endpoint)
    state = ServerState()
    kept = []
    gc.collect()
    start = time.process_time()
    for first in range(0, count, 64):
        batch = []
        for index in range(first, min(count, first + 64)):
            transport = RecordingTransport()
            connection = protocol(config=None, server_state=state, app_state={})
            connection.connection_made(transport)  # type: ignore[arg-type]
            connection.data_received(requests[index])
            batch.append((connection, transport))
        transports = [t for _, t in batch]
        await settle(state, transports, 1)
        if join:
            for connection, _ in batch:
                connection.data_received(JOIN)
            await settle(state, transports, 2)
        kept.extend(batch)
    elapsed = time.process_time() - start
    assert all(t.writes == (2 if join else 1) for _, t in kept), "a connect did not complete"
    for connection, _ in kept:
        connection.connection_lost(None)
    await settle(state, [], 0)
    return elapsed / count * 1e6


def per_call(count: int, call: Callable[[int], object]) -> float:
    gc.collect()
    start = time.process_time()
    for index in range(count):
        call(index)
    return (time.process_time() - start) / count * 1e6


async def steps(count: int, headers: int) -> dict[str, float]:
    codec = TokenCodec(KEY, 3600)
    tokens = [codec.issue(index + 1, 1_700_000_000_000_000).token for index in range(count)]
    plain = [request(None, headers) for _ in range(count)]
    signed = [request(token, headers) for token in tokens]
    endpoint = endpoint_for(None)
    socket = endpoint.sockets[0]
    upgrade = parse_upgrade(plain[0])
    assert not isinstance(upgrade, type(None)) and hasattr(upgrade, "headers")
    results: dict[str, float] = {}
    results["connect+join (no auth)"] = await connects(count, plain, True, None)
    results["connect+auth+join, new tokens"] = await connects(count, signed, True, TokenCodec(KEY, 3600))
    warm = TokenCodec(KEY, 3600)
    for token in tokens:
        warm.verify(token)
    results["connect+auth+join, known tokens"] = await connects(count, signed, True, warm)
    results["connect only (no auth)"] = await connects(count, plain, False, None)
    results["step: parse upgrade request"] = per_call(count, lambda i: parse_upgrade(plain[i]))

    def run_admit(index: int) -> None:
        coroutine = admit(endpoint, socket, upgrade.query, upgrade.headers, upgrade.subprotocols, None)  # type: ignore[union-attr]
        try:
            coroutine.send(None)
        except StopIteration:
            return
        raise AssertionError("admit suspended")

    results["step: admit (origin, subprotocols, vsn, connect hook)"] = per_call(count, run_admit)
    cold = TokenCodec(KEY, 3600)
    results["step: token verify, new token (HS256)"] = per_call(count, lambda i: cold.verify(tokens[i]))
    results["step: token verify, known token"] = per_call(count, lambda i: cold.verify(tokens[i]))
    key = upgrade.key  # type: ignore[union-attr]
    results["step: 101 response"] = per_call(
        count, lambda i: accept_response(key, None, b"server: uvicorn\r\n")
    )

    def new_session(index: int) -> Session:
        return Session(endpoint, socket, V2, {}, None, None, RecordingWire())

    results["step: Session object"] = per_call(count, new_session)
    return results


class RecordingWire:
    wire = True

    def write(self, frames: list[Any]) -> None:
        return None

    def close(self, code: int, reason: str) -> None:
        return None


async def _main(args: argparse.Namespace) -> dict[str, float]:
    best: dict[str, float] = {}
    for _ in range(args.repeat):
        for name, value in (await steps(args.count, args.headers)).items():
            best[name] = min(best.get(name, value), value)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.connect_micro", description=__doc__)
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--headers", type=int, default=0, help="extra browser header lines per request (0-7)")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    import uvloop

    for name, value in uvloop.run(_main(args)).items():
        print(f"{name:58s} {value:8.1f} µs")


if __name__ == "__main__":
    main()
