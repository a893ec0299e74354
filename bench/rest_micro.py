"""``python -m bench.rest_micro``: the REST scenario's two requests in process, no sockets.

Drives ``GET /api/v1/products/{id}`` and ``POST /api/v1/conversations/{id}/messages`` through the
node's full ASGI app (as ``relaygate serve`` mounts it, minus uvicorn's HTTP parsing) on a seeded
SQLite or PostgreSQL database, and prints µs of this process's CPU time per request (one at a time; on SQLite that includes
the database's work, which runs in this process; PostgreSQL's own is not counted). ``--profile`` adds a cProfile table per request kind,
which is how bench/ANALYSIS.md splits the cost by layer.
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
        for name, call in requests(app, seeded).items():
            if args.only and name != args.only:
                continue
            best = min([await measure(call, args.count, None) for _ in range(args.repeat)])
            print(f"{name}: {best:.1f} µs CPU per request (best of {args.repeat} x {args.count})")
            if args.profile:
                profile = cProfile.Profile()
                await measure(call, args.count, profile)
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
