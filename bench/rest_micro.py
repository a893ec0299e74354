"""``python -m bench.rest_micro``: the REST scenario's two requests in process, no sockets.

Drives ``GET /api/v1/products/{id}`` and ``POST /api/v1/conversations/{id}/messages`` through the
node's full ASGI app (as ``relaygate serve`` mounts it, minus uvicorn's HTTP parsing) on a seeded
SQLite or PostgreSQL database, and prints µs of this process's CPU time per request (one at a time; on SQLite that includes
the database's work, which runs in this process; PostgreSQL's own is not counted). ``--profile`` adds a cProfile table per request kind,
which is how bench/ANALYSIS.md splits the cost by layer.

``--wire`` sends the requests' bytes instead, through the protocol and uvicorn configuration of
``relaygate serve`` on in-memory transports (``--connections`` of them, a request on each at a
time): the same path as on a socket, HTTP/1.1 parsing and the event loop included, without the
kernel's share.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import os
import pstats
import secrets
import tempfile
import time
from collections.abc import Awaitable, Callable
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

import orjson

from bench.servers.seed import Seed, seed
from relaygate.config import Settings
from relaygate.node import create_app


def _scope(method: str, path: str, headers: list[tuple[bytes, bytes]]) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "server": ("127.0.0.1", 8000),
        "client": ("127.0.0.1", 50000),
        "scheme": "http",
        "method": method,
        "root_path": "",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": headers,
        "state": {},
    }


Request = Callable[[], Awaitable[int]]


def requests(app: Any, seeded: Seed) -> dict[str, Request]:
    body = orjson.dumps({"content": "hello"})
    get_headers = [(b"host", b"127.0.0.1"), (b"accept", b"*/*")]
    post_headers = [
        (b"host", b"127.0.0.1"),
        (b"accept", b"*/*"),
        (b"authorization", f"Bearer {seeded.token}".encode()),
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
    ]

    def make(method: str, path: str, headers: list[tuple[bytes, bytes]], payload: bytes) -> Request:
        async def call() -> int:
            status = 0

            async def receive() -> dict[str, Any]:
                return {"type": "http.request", "body": payload, "more_body": False}

            async def send(message: dict[str, Any]) -> None:
                nonlocal status
                if message["type"] == "http.response.start":
                    status = message["status"]

            await app(_scope(method, path, headers), receive, send)
            return status

        return call

    return {
        "get": make("GET", f"/api/v1/products/{seeded.product_id}", get_headers, b""),
        "post": make("POST", f"/api/v1/conversations/{seeded.conversation_id}/messages", post_headers, body),
    }


async def measure(call: Request, count: int, profile: cProfile.Profile | None) -> float:
    for _ in range(50):
        await call()
    context: AbstractContextManager[Any] = profile if profile is not None else nullcontext()
    start = time.process_time()
    with context:
        for _ in range(count):
            status = await call()
            assert status in (200, 201), status
    return (time.process_time() - start) / count * 1e6


class _Transport(asyncio.Transport):
    """An in-memory transport: what the protocol writes ends a request when a response is complete."""

    def __init__(self, number: int, written: Callable[[bytes], None]) -> None:
        super().__init__({"sockname": ("127.0.0.1", 8000), "peername": ("127.0.0.1", 40000 + number)})
        self.written = written
        self.protocol: Any = None
        self.closing = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.written(bytes(data))

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.closing = True

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self.protocol = protocol

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self.protocol  # type: ignore[no-any-return]

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


def wire_requests(app: Any, seeded: Seed, connections: int) -> dict[str, Request]:
    """Each request kind as bytes sent on ``connections`` in-memory connections at once; a call
    returns once every connection got its response (the status is the last one's)."""
    from uvicorn.server import ServerState

    from relaygate.web.server import http_protocol, server_config

    endpoint = app.state.relaygate.endpoint
    config = server_config(
        endpoint.wrap(app),
        "127.0.0.1",
        8000,
        ws=endpoint.websocket_protocol(),
        http=endpoint.http_protocol(http_protocol()),
    )
    config.load()
    state = ServerState()
    loop = asyncio.get_running_loop()
    body = orjson.dumps({"content": "hello"})
    raw = {
        "get": (
            f"GET /api/v1/products/{seeded.product_id} HTTP/1.1\r\nhost: 127.0.0.1\r\naccept: */*\r\n\r\n"
        ).encode(),
        "post": (
            f"POST /api/v1/conversations/{seeded.conversation_id}/messages HTTP/1.1\r\nhost: 127.0.0.1\r\n"
            f"accept: */*\r\nauthorization: Bearer {seeded.token}\r\ncontent-type: application/json\r\n"
            f"content-length: {len(body)}\r\n\r\n"
        ).encode()
        + body,
    }
    pending = 0
    status = 0
    done: asyncio.Future[None] | None = None

    def written(data: bytes) -> None:
        nonlocal pending, status
        if data.startswith(b"HTTP/1.1 "):
            status = int(data[9:12])
            pending -= 1
            if pending == 0 and done is not None:
                done.set_result(None)

    transports = []
    for number in range(connections):
        transport = _Transport(number, written)
        protocol = config.http_protocol_class(config=config, server_state=state, app_state={})  # type: ignore[call-arg]
        transport.protocol = protocol
        protocol.connection_made(transport)
        transports.append(transport)

    def make(data: bytes) -> Request:
        async def call() -> int:
            nonlocal pending, done
            pending = connections
            done = loop.create_future()
            for transport in transports:
                transport.protocol.data_received(data)
            await done
            return status

        return call

    return {name: make(data) for name, data in raw.items()}


async def _main(args: argparse.Namespace, database_url: str) -> None:
    # the app's own settings read it from the environment: measure, do not limit
    os.environ["RELAYGATE_CHAT_RATE_LIMIT"] = str(10**9)
    folder = Path(tempfile.mkdtemp(prefix="relaygate-micro-"))
    settings = Settings(
        env="test",
        database_url=database_url or f"sqlite+aiosqlite:///{folder / 'micro.db'}",
        secret_key=secrets.token_urlsafe(48),
        log_level="warning",
    )
    seeded = await seed(settings)
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        await asyncio.sleep(0.2)  # the access view loads in the background
        kinds = wire_requests(app, seeded, args.connections) if args.wire else requests(app, seeded)
        for name, call in kinds.items():
            if args.only and name != args.only:
                continue
            per_call = args.connections if args.wire else 1
            count = max(1, args.count // per_call)
            best = min([await measure(call, count, None) for _ in range(args.repeat)]) / per_call
            print(f"{name}: {best:.1f} µs CPU per request (best of {args.repeat} x {args.count})")
            if args.profile:
                profile = cProfile.Profile()
                await measure(call, count, profile)
                out = io.StringIO()
                pstats.Stats(profile, stream=out).sort_stats(args.sort).print_stats(args.top)
                print(out.getvalue())


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.rest_micro", description=__doc__)
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--postgres", action="store_true", help="a throwaway PostgreSQL instead of SQLite")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--sort", default="tottime")
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--only", choices=("get", "post"), help="one request kind")
    parser.add_argument(
        "--wire", action="store_true", help="as bytes through relaygate serve's HTTP protocol"
    )
    parser.add_argument("--connections", type=int, default=64, help="with --wire: connections at once")
    args = parser.parse_args()
    import uvloop

    if args.postgres:
        from tests.servers import PostgresServer

        server = PostgresServer()
        server.start()
        try:
            uvloop.run(_main(args, server.create_database("micro")))
        finally:
            server.close()
    else:
        uvloop.run(_main(args, ""))


if __name__ == "__main__":
    main()
