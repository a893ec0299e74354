"""The floor: a bare ``websockets`` server speaking the minimal Phoenix V2 subset the bench uses.

Joins any topic, answers heartbeats, ``ping`` replies its payload, ``publish`` broadcasts its
payload as event ``msg`` to every socket joined to the topic (encoded once, ``websockets.broadcast``).
No channel runtime, no per-channel state: what holding and writing to sockets costs in Python.
"""

from __future__ import annotations

import argparse
from typing import Any

import orjson
import uvloop
from websockets.asyncio.server import ServerConnection, broadcast, serve

from bench.servers import raise_fd_limit

OK_EMPTY = {"status": "ok", "response": {}}


def reply(join_ref: Any, ref: Any, topic: str, status: str, response: Any) -> bytes:
    return orjson.dumps([join_ref, ref, topic, "phx_reply", {"status": status, "response": response}])


async def handler(ws: ServerConnection, topics: dict[str, set[ServerConnection]]) -> None:
    joined: set[str] = set()
    try:
        async for raw in ws:
            join_ref, ref, topic, event, payload = orjson.loads(raw)[:5]
            if event == "heartbeat" or event == "phx_join":
                if event == "phx_join":
                    topics.setdefault(topic, set()).add(ws)
                    joined.add(topic)
                out = reply(join_ref, ref, topic, "ok", {})
            elif event == "ping":
                out = reply(join_ref, ref, topic, "ok", payload)
            elif event == "publish":
                frame = orjson.dumps([None, None, topic, "msg", payload]).decode()
                broadcast(topics.get(topic, ()), frame)
                out = reply(join_ref, ref, topic, "ok", {})
            else:
                out = reply(join_ref, ref, topic, "error", {"reason": "unmatched topic"})
            await ws.send(out.decode())
    finally:
        for topic in joined:
            topics[topic].discard(ws)


async def main(port: int) -> None:
    topics: dict[str, set[ServerConnection]] = {}
    async with serve(
        lambda ws: handler(ws, topics),
        "127.0.0.1",
        port,
        compression=None,
        ping_interval=None,
        backlog=4096,
    ) as server:
        await server.serve_forever()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    raise_fd_limit()
    uvloop.run(main(parser.parse_args().port))
