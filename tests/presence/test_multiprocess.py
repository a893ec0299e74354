"""Two nodes in two processes sharing one Redis: broadcasts, presence, kill -9, Redis restart."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.servers import RedisServer

ROOT = Path(__file__).resolve().parents[2]


class NodeProcess:
    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.messages: list[dict[str, Any]] = []
        self._replies: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._reader = asyncio.create_task(self._read())

    @classmethod
    async def spawn(cls, redis_url: str, name: str) -> NodeProcess:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tests.cluster_node",
            redis_url,
            name,
            cwd=ROOT,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        node = cls(process)
        assert await node.reply() == {"ok": "ready"}
        return node

    async def _read(self) -> None:
        assert self.process.stdout is not None
        while line := await self.process.stdout.readline():
            event = orjson.loads(line)
            if "msg" in event:
                self.messages.append(event)
            else:
                self._replies.put_nowait(event)

    async def reply(self) -> dict[str, Any]:
        async with asyncio.timeout(30):
            return await self._replies.get()

    async def send(self, cmd: str, **args: Any) -> dict[str, Any]:
        assert self.process.stdin is not None
        self.process.stdin.write(orjson.dumps({"cmd": cmd, **args}) + b"\n")
        await self.process.stdin.drain()
        answer = await self.reply()
        assert answer["ok"] == cmd
        return answer

    def got(self, event: str) -> list[dict[str, Any]]:
        return [m["payload"] for m in self.messages if m["event"] == event]

    async def wait_for(self, event: str, count: int = 1, timeout: float = 20.0) -> list[dict[str, Any]]:
        async with asyncio.timeout(timeout):
            while len(self.got(event)) < count:
                await asyncio.sleep(0.02)
        return self.got(event)

    async def close(self) -> None:
        if self.process.returncode is None:
            assert self.process.stdin is not None
            self.process.stdin.close()
            try:
                async with asyncio.timeout(15):
                    await self.process.wait()
            except TimeoutError:
                self.process.kill()
                await self.process.wait()
        await self._reader


@pytest.fixture
async def redis_server_own() -> AsyncIterator[RedisServer]:
    server = RedisServer()
    server.start()
    yield server
    server.close()


async def test_two_processes(redis_server_own: RedisServer) -> None:
    server = redis_server_own
    n1 = await NodeProcess.spawn(server.url, "node-1")
    n2 = await NodeProcess.spawn(server.url, "node-2")
    try:
        await n1.send("subscribe", topic="room:mp")
        await n2.send("subscribe", topic="room:mp")

        # a broadcast on node 1 reaches node 2 (and node 1's own subscriber once)
        await n1.send("broadcast", topic="room:mp", event="hello", payload={"n": 1})
        assert await n2.wait_for("hello") == [{"n": 1}]
        await n1.send("broadcast", topic="room:mp", event="bin", payload={"binary": "AAH/"})
        assert await n2.wait_for("bin") == [{"binary": "AAH/"}]
        await n2.send("broadcast", topic="room:mp", event="ack", payload={})
        await n1.wait_for("ack")
        assert n1.got("hello") == [{"n": 1}]

        # presence lists agree
        r1 = (await n1.send("track", topic="room:mp", key="u1", meta={"node": 1}))["ref"]
        r2 = (await n2.send("track", topic="room:mp", key="u2", meta={"node": 2}))["ref"]
        expected = {
            "u1": {"metas": [{"node": 1, "phx_ref": r1}]},
            "u2": {"metas": [{"node": 2, "phx_ref": r2}]},
        }
        async with asyncio.timeout(10):
            while (await n1.send("list", topic="room:mp"))["list"] != expected:
                await asyncio.sleep(0.05)
            while (await n2.send("list", topic="room:mp"))["list"] != expected:
                await asyncio.sleep(0.05)

        # a Redis restart is survived: broadcasts flow again, presence comes back
        server.stop()
        server.start()
        async with asyncio.timeout(30):
            n = 0
            while not n2.got("after_restart"):
                await n1.send("broadcast", topic="room:mp", event="after_restart", payload={"n": n})
                n += 1
                await asyncio.sleep(0.2)
            while (await n2.send("list", topic="room:mp"))["list"] != expected:
                await asyncio.sleep(0.1)

        # kill -9 of node 1: node 2 reports its presence as a leave within 10 s
        # (only diffs after the kill count: the restart may have shown the same leave, then a join)
        seen = len(n2.got("presence_diff"))
        n1.process.kill()
        await n1.process.wait()
        leave = {"joins": {}, "leaves": {"u1": {"metas": [{"node": 1, "phx_ref": r1}]}}}
        async with asyncio.timeout(10):
            while leave not in n2.got("presence_diff")[seen:]:
                await asyncio.sleep(0.05)
        assert (await n2.send("list", topic="room:mp"))["list"] == {"u2": expected["u2"]}
    finally:
        await n1.close()
        await n2.close()
