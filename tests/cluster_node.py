"""One cluster node in its own process, driven by JSON lines on stdin, reporting on stdout.

Used by the multi-process tests: ``python -m tests.cluster_node REDIS_URL NODE_NAME``.
Commands: subscribe {topic}, broadcast {topic, event, payload}, track {topic, key, meta},
list {topic}. Every command is answered ``{"ok": cmd, ...}``; broadcasts that reach a
subscribed topic are reported as ``{"msg": topic, "event": e, "payload": p}``.
"""

from __future__ import annotations

import asyncio
import base64
import sys
from typing import Any

import orjson

from relaygate.presence import RedisPresence
from relaygate.pubsub import Broadcast
from relaygate.pubsub.redis import RedisPubSub


def emit(line: dict[str, Any]) -> None:
    sys.stdout.buffer.write(orjson.dumps(line) + b"\n")
    sys.stdout.buffer.flush()


class Reporter:
    def deliver(self, message: Broadcast, cache: dict[Any, Any]) -> None:
        payload = message.payload
        if isinstance(payload, bytes):
            payload = {"binary": base64.b64encode(payload).decode()}
        emit({"msg": message.topic, "event": message.event, "payload": payload})


async def main(redis_url: str, node_name: str) -> None:
    pubsub = RedisPubSub(redis_url, node_name)
    await pubsub.start()
    presence = RedisPresence(pubsub, redis_url, node_name)
    await presence.start()
    owner, reporter = object(), Reporter()
    emit({"ok": "ready"})
    reader = asyncio.StreamReader()
    loop = asyncio.get_running_loop()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while line := await reader.readline():
        command = orjson.loads(line)
        name = command["cmd"]
        if name == "subscribe":
            await pubsub.subscribe(command["topic"], reporter)
            emit({"ok": name})
        elif name == "broadcast":
            payload = command["payload"]
            if "binary" in payload:
                payload = base64.b64decode(payload["binary"])
            await pubsub.broadcast(command["topic"], command["event"], payload)
            emit({"ok": name})
        elif name == "track":
            ref = await presence.track(owner, command["topic"], command["key"], command["meta"])
            emit({"ok": name, "ref": ref})
        elif name == "list":
            emit({"ok": name, "list": presence.list(command["topic"])})
    await presence.stop()
    await pubsub.stop()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
